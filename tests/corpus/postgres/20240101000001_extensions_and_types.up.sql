-- Extensions and types most applications start with.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TYPE account_status AS ENUM ('active', 'suspended');
CREATE TYPE money_amount AS (currency char(3), cents bigint);
CREATE DOMAIN email AS citext CHECK (VALUE ~ '^[^@]+@[^@]+$');
