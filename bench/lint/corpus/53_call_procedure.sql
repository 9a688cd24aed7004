-- expect: flag
-- source: PG docs CALL
-- differ: squawk cannot see what a procedure does and passes it; shipgate asks for an acknowledgement
CALL do_db_maintenance();
