-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ALTER COLUMN address TYPE varchar(80), ALTER COLUMN name TYPE varchar(100);
