-- expect: flag
-- source: PG docs DROP TABLE
DROP TABLE films, distributors;
