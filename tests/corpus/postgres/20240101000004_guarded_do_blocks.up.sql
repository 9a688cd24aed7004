-- Idempotent guards, as projects write them when a migration may meet a partly set-up database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'plan_tier') THEN
        CREATE TYPE plan_tier AS ENUM ('free', 'pro');
    END IF;
END
$$;

DO $guard$
BEGIN
    CREATE TABLE IF NOT EXISTS audit_events (id bigserial PRIMARY KEY, payload jsonb NOT NULL);
EXCEPTION
    WHEN duplicate_table THEN NULL;
END
$guard$ LANGUAGE plpgsql;
