CREATE TABLE accounts (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    display_name VARCHAR(200) NULL,
    first_name VARCHAR(100) NULL,
    last_name VARCHAR(100) NULL,
    full_name VARCHAR(201) GENERATED ALWAYS AS (CONCAT_WS(' ', first_name, last_name)) VIRTUAL,
    balance_cents BIGINT NOT NULL DEFAULT 0,
    bio TEXT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT accounts_balance_not_negative CHECK (balance_cents >= 0),
    UNIQUE KEY accounts_email_uq (email),
    FULLTEXT KEY accounts_bio_ft (bio)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
