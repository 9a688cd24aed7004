-- expect: pass
-- source: PG docs ALTER TABLE examples
-- differ: dropping NOT NULL is an expand step: old code keeps working and nothing is rewritten; squawk bans it outright
ALTER TABLE distributors ALTER COLUMN street DROP NOT NULL;
