-- golang-migrate users wrap files by hand.
BEGIN;
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount_cents integer NOT NULL,
    memo varchar(200)
);
INSERT INTO invoices (account_id, amount_cents, memo)
SELECT id, 0, 'opening; zero' FROM accounts;
COMMIT;
