-- expect: flag
-- source: PG docs DROP SCHEMA
-- differ: squawk has no rule for DROP SCHEMA (with CASCADE it drops every table in it)
DROP SCHEMA mystuff CASCADE;
