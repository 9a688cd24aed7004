-- shipgate:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS invoices_account_idx;
