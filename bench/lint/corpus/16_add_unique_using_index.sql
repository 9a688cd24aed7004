-- expect: pass
-- source: PG docs ALTER TABLE examples
ALTER TABLE distributors ADD CONSTRAINT dist_id_temp_idx UNIQUE USING INDEX dist_id_temp_idx;
