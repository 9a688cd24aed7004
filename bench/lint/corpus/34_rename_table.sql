-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors RENAME TO suppliers;
