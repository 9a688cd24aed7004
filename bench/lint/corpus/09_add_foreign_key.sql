-- expect: flag
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ADD CONSTRAINT distfk FOREIGN KEY (address) REFERENCES addresses (address);
