-- expect: flag
-- source: rule list: DML after ACCESS EXCLUSIVE in one transaction
-- differ: squawk looks at statements one at a time; it does not see that the UPDATE runs while the ALTER's ACCESS EXCLUSIVE lock is held
ALTER TABLE films ADD COLUMN rating integer;
UPDATE films SET rating = 0 WHERE kind = 'Comedy';
