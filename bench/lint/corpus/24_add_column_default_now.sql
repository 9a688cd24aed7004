-- expect: pass
-- source: PG docs ALTER TABLE examples (now() is stable: no rewrite)
ALTER TABLE measurements ADD COLUMN mtime timestamp with time zone DEFAULT now();
