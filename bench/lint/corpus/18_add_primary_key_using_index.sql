-- expect: pass
-- source: PG docs ALTER TABLE (USING INDEX)
ALTER TABLE distributors ADD CONSTRAINT distributors_pkey PRIMARY KEY USING INDEX distributors_dist_id_idx;
