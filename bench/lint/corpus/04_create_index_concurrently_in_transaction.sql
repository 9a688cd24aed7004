-- expect: flag
-- source: PG docs: CONCURRENTLY cannot run inside a transaction block
-- differ: squawk reports ban-concurrent-index-creation-in-transaction only when the file itself says BEGIN, even with --assume-in-transaction; shipgate knows the file runs in its transaction
CREATE INDEX CONCURRENTLY sales_quantity_index ON sales_table (quantity);
