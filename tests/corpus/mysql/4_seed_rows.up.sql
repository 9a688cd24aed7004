# Data only: one transaction on every engine.
INSERT INTO accounts (email, first_name, last_name) VALUES ('a@example.com', 'Ada', 'Lovelace');
INSERT INTO accounts (email, bio) VALUES ('b@example.com', 'it''s a \'quoted\' bio; with a semicolon');
UPDATE accounts SET balance_cents = 100 WHERE email = 'a@example.com';
