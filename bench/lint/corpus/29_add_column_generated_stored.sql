-- expect: flag
-- source: PG docs: stored generated column rewrites
ALTER TABLE users ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;
