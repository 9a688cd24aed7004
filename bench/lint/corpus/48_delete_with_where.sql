-- expect: pass
-- source: PG docs DELETE examples
DELETE FROM films WHERE kind <> 'Musical';
