-- expect: flag
-- source: PG docs CREATE INDEX
CREATE UNIQUE INDEX title_idx ON films (title);
