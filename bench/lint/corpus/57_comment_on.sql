-- expect: pass
-- source: PG docs COMMENT
COMMENT ON TABLE films IS 'Every film we know of';
