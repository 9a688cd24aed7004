-- expect: flag
-- source: PG docs UPDATE
-- differ: squawk has no DML rules
UPDATE films SET kind = 'Dramatic';
