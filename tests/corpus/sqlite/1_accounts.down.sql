DROP TABLE settings;
DROP TABLE accounts;
