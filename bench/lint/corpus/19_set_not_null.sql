-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ALTER COLUMN street SET NOT NULL;
