-- expect: flag
-- source: rule list: timeout set to 0
-- differ: squawk requires a lock_timeout to be set but accepts 0, which disables it
SET LOCAL lock_timeout = 0;
ALTER TABLE films ADD COLUMN rating integer;
