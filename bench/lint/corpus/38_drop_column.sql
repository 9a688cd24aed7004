-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors DROP COLUMN address RESTRICT;
