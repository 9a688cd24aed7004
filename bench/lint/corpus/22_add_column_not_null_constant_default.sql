-- expect: pass
-- source: PG docs ALTER TABLE (fast default, PG 11+)
ALTER TABLE distributors ADD COLUMN region text NOT NULL DEFAULT 'emea';
