-- expect: flag
-- source: rule list: CONCURRENTLY in a file with other statements
-- differ: squawk has no rule for a concurrent build sharing a non-transactional file, where a failure leaves an INVALID index after committed statements
-- shipgate:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS films_kind_idx ON films (kind);
ALTER TABLE films ADD COLUMN rating integer;
