-- shipgate:lock-timeout 10s
-- Listing recent sign-ups.
CREATE INDEX users_created_at_idx ON users (created_at);
