-- expect: pass
-- source: PG docs CREATE VIEW
CREATE VIEW comedies AS SELECT * FROM films WHERE kind = 'Comedy';
