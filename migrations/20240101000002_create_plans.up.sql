-- Billing plans, with the rows every environment needs.
CREATE TABLE plans (
    code        VARCHAR(40) PRIMARY KEY,
    monthly_usd INTEGER NOT NULL
);
INSERT INTO plans (code, monthly_usd) VALUES ('free', 0), ('team', 20), ('business', 99);
