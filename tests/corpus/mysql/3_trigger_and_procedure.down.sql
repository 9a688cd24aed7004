DROP PROCEDURE credit_account;
DROP TRIGGER accounts_name_default;
