-- expect: flag
-- source: PG docs ALTER TABLE (NOT VALID, then VALIDATE)
-- differ: both flag it; squawk under a general rule (constraint-missing-not-valid), shipgate with a rule that names the real problem: the ADD's lock is still held during VALIDATE
ALTER TABLE distributors ADD CONSTRAINT distfk FOREIGN KEY (address) REFERENCES addresses (address) NOT VALID;
ALTER TABLE distributors VALIDATE CONSTRAINT distfk;
