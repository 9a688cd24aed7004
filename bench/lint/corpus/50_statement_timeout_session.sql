-- expect: flag
-- source: rule list: session-level SET of a timeout
-- differ: squawk accepts a session-level SET, which leaks into every later migration on shipgate's connection
SET statement_timeout = '5min';
ALTER TABLE films ADD COLUMN rating integer;
