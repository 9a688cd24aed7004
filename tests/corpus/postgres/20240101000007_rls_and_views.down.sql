DROP STATISTICS accounts_status_created;
DROP PUBLICATION accounts_pub;
DROP VIEW active_accounts;
DROP MATERIALIZED VIEW account_totals;
DROP POLICY accounts_self ON accounts;
ALTER TABLE accounts DISABLE ROW LEVEL SECURITY;
