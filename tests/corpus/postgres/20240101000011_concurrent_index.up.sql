-- shipgate:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_account_idx ON invoices (account_id);
