-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors RENAME COLUMN address TO city;
