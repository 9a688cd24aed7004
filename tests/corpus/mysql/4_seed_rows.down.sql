DELETE FROM accounts WHERE email IN ('a@example.com', 'b@example.com');
