-- API keys a user makes for programs (only a hash of each secret is kept, found by its public
-- prefix), and one-time upload links a user hands to someone without an account.
CREATE TABLE api_keys (
    id CHAR(32) NOT NULL PRIMARY KEY,
    owner_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(100) NOT NULL,
    prefix CHAR(12) NOT NULL,
    secret_hash BINARY(32) NOT NULL,
    scopes VARCHAR(200) NOT NULL,
    expires_at DATETIME(6) NULL,
    last_used_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    UNIQUE KEY uq_api_keys_prefix (prefix),
    KEY ix_api_keys_owner (owner_id),
    CONSTRAINT fk_api_keys_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE upload_links (
    id CHAR(32) NOT NULL PRIMARY KEY,
    owner_id BIGINT UNSIGNED NOT NULL,
    token_hash BINARY(32) NOT NULL,
    options VARCHAR(2000) NOT NULL,
    max_bytes BIGINT UNSIGNED NOT NULL,
    allow_download TINYINT(1) NOT NULL DEFAULT 0,
    tag VARCHAR(255) NULL,
    webhook_url VARCHAR(2000) NULL,
    expires_at DATETIME(6) NOT NULL,
    used_at DATETIME(6) NULL,
    job_id CHAR(32) NULL,
    upload_id CHAR(32) NULL,
    deleted_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    UNIQUE KEY uq_upload_links_token (token_hash),
    KEY ix_upload_links_owner (owner_id),
    CONSTRAINT fk_upload_links_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
