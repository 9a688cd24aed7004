ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY accounts_self ON accounts
    USING (email = current_setting('app.email', true)::citext);
CREATE MATERIALIZED VIEW account_totals AS
    SELECT status, count(*) AS n FROM accounts GROUP BY status
WITH DATA;
CREATE UNIQUE INDEX account_totals_status_idx ON account_totals (status);
CREATE VIEW active_accounts WITH (security_barrier) AS
    SELECT id, email FROM accounts WHERE status = 'active';
CREATE PUBLICATION accounts_pub FOR TABLE accounts;
CREATE STATISTICS accounts_status_created (dependencies) ON status, created_at FROM accounts;
