-- expect: flag
-- source: PG docs ALTER TABLE examples (volatile default rewrites)
ALTER TABLE measurements ADD COLUMN mtime timestamp with time zone DEFAULT clock_timestamp();
