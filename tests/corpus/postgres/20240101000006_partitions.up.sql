CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    account_id uuid NOT NULL,
    happened_at timestamptz NOT NULL,
    kind text NOT NULL,
    PRIMARY KEY (id, happened_at)
) PARTITION BY RANGE (happened_at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_account_idx ON events (account_id, happened_at DESC);
