INSERT INTO accounts (email, [display name], "it's quoted") VALUES ('a@example.com', 'A; B', 'x');
INSERT INTO settings (key, value) VALUES ('theme', X'6461726B');
