-- expect: pass
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ADD COLUMN address varchar(30);
