-- expect: flag
-- source: PG docs TRUNCATE
-- differ: squawk only bans TRUNCATE ... CASCADE; a plain TRUNCATE still empties the table irreversibly under ACCESS EXCLUSIVE
TRUNCATE bigtable, fattable;
