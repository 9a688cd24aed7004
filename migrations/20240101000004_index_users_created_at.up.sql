-- shipgate:lock-timeout 10s
-- Listing recent sign-ups.
-- shipgate:allow index-not-concurrent users is created in this same first release and is empty; SQLite has no CONCURRENTLY
CREATE INDEX users_created_at_idx ON users (created_at);
