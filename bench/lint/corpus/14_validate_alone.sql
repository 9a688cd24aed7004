-- expect: pass
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors VALIDATE CONSTRAINT distfk;
