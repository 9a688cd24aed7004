-- expect: flag
-- source: PG docs CREATE INDEX
CREATE INDEX title_idx ON films (title);
