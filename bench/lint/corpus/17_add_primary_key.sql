-- expect: flag
-- source: PG docs ALTER TABLE examples
-- differ: both flag it; squawk's adding-serial-primary-key-field is about serial columns, its relevant finding is constraint-missing-not-valid
ALTER TABLE distributors ADD PRIMARY KEY (dist_id);
