CREATE TABLE accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email email NOT NULL UNIQUE,
    display_name varchar(200),
    status account_status NOT NULL DEFAULT 'active',
    balance money_amount,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(display_name, ''))) STORED,
    CONSTRAINT accounts_name_not_blank CHECK (display_name IS NULL OR btrim(display_name) <> '')
);
COMMENT ON TABLE accounts IS 'People who sign in; one row each.';
COMMENT ON COLUMN accounts.settings IS 'Free-form preferences; see docs/settings.md';
CREATE INDEX accounts_created_at_idx ON accounts (created_at) INCLUDE (status);
CREATE INDEX accounts_active_idx ON accounts (email) WHERE status = 'active';
CREATE INDEX accounts_search_idx ON accounts USING gin (search);
GRANT SELECT ON accounts TO PUBLIC;
REVOKE ALL ON accounts FROM PUBLIC;
