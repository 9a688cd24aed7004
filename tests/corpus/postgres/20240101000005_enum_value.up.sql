-- PostgreSQL 12+ adds an enum value inside a transaction (it cannot be used in the same one).
ALTER TYPE account_status ADD VALUE IF NOT EXISTS 'closed' AFTER 'suspended';
