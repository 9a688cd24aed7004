-- Functions with the options real projects use.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = public, pg_temp
    COST 100
AS $$
BEGIN
    NEW.updated_at := now(); -- a comment with a ; inside
    RETURN NEW;
END;
$$;

CREATE FUNCTION account_count(status_filter account_status DEFAULT 'active') RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT count(*) FROM accounts WHERE status = status_filter);

CREATE FUNCTION recent_accounts(n int) RETURNS SETOF accounts
    LANGUAGE sql STABLE ROWS 50
AS 'SELECT * FROM accounts ORDER BY created_at DESC LIMIT n';

CREATE FUNCTION normalise_email(raw text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT lower(btrim(raw));
END;

CREATE PROCEDURE suspend_account(target uuid)
    LANGUAGE plpgsql
AS $body$
DECLARE
    affected int;
BEGIN
    UPDATE accounts SET status = 'suspended' WHERE id = target;
    GET DIAGNOSTICS affected = ROW_COUNT;
    IF affected = 0 THEN
        RAISE NOTICE 'no account %', target;
    END IF;
END
$body$;

ALTER TABLE accounts ADD COLUMN updated_at timestamptz;
CREATE TRIGGER accounts_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
