-- expect: flag
-- source: rule list: several ACCESS EXCLUSIVE statements in one transaction
-- differ: as above: two ACCESS EXCLUSIVE locks held together in one transaction
ALTER TABLE films ADD COLUMN rating integer;
ALTER TABLE distributors ADD COLUMN rating integer;
