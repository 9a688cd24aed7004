-- expect: flag
-- source: PG docs DO example
-- differ: squawk passes DO bodies unchecked (here: dynamic GRANTs via EXECUTE); shipgate asks for an acknowledgement
DO $$DECLARE r record;
BEGIN
    FOR r IN SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_type = 'VIEW' AND table_schema = 'public'
    LOOP
        EXECUTE 'GRANT ALL ON ' || quote_ident(r.table_schema) || '.' || quote_ident(r.table_name) || ' TO webuser';
    END LOOP;
END$$;
