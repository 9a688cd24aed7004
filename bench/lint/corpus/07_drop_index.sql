-- expect: flag
-- source: PG docs DROP INDEX
DROP INDEX title_idx;
