-- expect: pass
-- source: PG docs ALTER TABLE (several actions on one table)
ALTER TABLE films ADD COLUMN rating integer;
ALTER TABLE films ALTER COLUMN rating SET DEFAULT 0;
