DROP TRIGGER accounts_fts_insert;
DROP TABLE accounts_fts;
