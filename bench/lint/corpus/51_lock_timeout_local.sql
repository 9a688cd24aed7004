-- expect: pass
-- source: PG docs SET LOCAL
SET LOCAL lock_timeout = '5s';
ALTER TABLE films ADD COLUMN rating integer;
