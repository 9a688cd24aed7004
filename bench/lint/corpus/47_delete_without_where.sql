-- expect: flag
-- source: PG docs DELETE examples (clear the table)
-- differ: squawk has no DML rules
DELETE FROM films;
