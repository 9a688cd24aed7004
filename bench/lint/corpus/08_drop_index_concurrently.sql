-- expect: pass
-- source: PG docs DROP INDEX CONCURRENTLY
-- shipgate:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS title_idx;
