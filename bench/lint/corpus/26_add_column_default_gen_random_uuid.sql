-- expect: flag
-- source: rule list: volatile default
ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();
