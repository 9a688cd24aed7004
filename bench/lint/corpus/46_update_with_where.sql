-- expect: pass
-- source: PG docs UPDATE examples
UPDATE films SET kind = 'Dramatic' WHERE kind = 'Drama';
