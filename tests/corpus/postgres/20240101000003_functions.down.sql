DROP TRIGGER accounts_updated_at ON accounts;
ALTER TABLE accounts DROP COLUMN updated_at;
DROP PROCEDURE suspend_account(uuid);
DROP FUNCTION normalise_email(text);
DROP FUNCTION recent_accounts(int);
DROP FUNCTION account_count(account_status);
DROP FUNCTION set_updated_at();
