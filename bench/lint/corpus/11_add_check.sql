-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ADD CONSTRAINT zipchk CHECK (char_length(zipcode) = 5);
