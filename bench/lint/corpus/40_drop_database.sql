-- expect: flag
-- source: PG docs DROP DATABASE
DROP DATABASE music;
