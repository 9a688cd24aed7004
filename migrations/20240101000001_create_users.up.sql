-- The accounts table. Portable SQL: runs on PostgreSQL and SQLite alike.
CREATE TABLE users (
    id         BIGINT PRIMARY KEY,
    email      VARCHAR(320) NOT NULL UNIQUE,
    name       VARCHAR(200) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
