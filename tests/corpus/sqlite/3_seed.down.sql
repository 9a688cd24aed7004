DELETE FROM settings WHERE key = 'theme';
DELETE FROM accounts WHERE email = 'a@example.com';
