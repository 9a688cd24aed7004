-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ADD CONSTRAINT dist_id_zipcode_key UNIQUE (dist_id, zipcode);
