-- expect: pass
-- source: PG docs CREATE INDEX (Building Indexes Concurrently)
-- shipgate:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS sales_quantity_index ON sales_table (quantity);
