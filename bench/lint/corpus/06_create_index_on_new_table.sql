-- expect: pass
-- source: PG docs CREATE TABLE + CREATE INDEX
CREATE TABLE films_archive (code char(5) PRIMARY KEY, title varchar(40) NOT NULL);
CREATE INDEX films_archive_title_idx ON films_archive (title);
