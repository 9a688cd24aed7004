-- expect: flag
-- source: PG docs: identity column fills every row
ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
