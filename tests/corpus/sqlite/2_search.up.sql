CREATE VIRTUAL TABLE accounts_fts USING fts5(email, [display name], content='accounts', content_rowid='id');
CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts
BEGIN
    INSERT INTO accounts_fts (rowid, email, [display name]) VALUES (new.id, new.email, new.[display name]);
    SELECT CASE WHEN new.email = '' THEN RAISE(ABORT, 'empty; email') END;
END;
