-- The room uploads take while their bytes arrive (and unfinished tus uploads keep), so that
-- quotas are taken under the owner's row lock instead of checked and then inserted.
CREATE TABLE quota_holds (
    id CHAR(32) NOT NULL PRIMARY KEY,
    owner_id BIGINT UNSIGNED NOT NULL,
    bytes BIGINT UNSIGNED NOT NULL,
    jobs TINYINT UNSIGNED NOT NULL DEFAULT 0,
    expires_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    KEY ix_quota_holds_owner_expires (owner_id, expires_at),
    CONSTRAINT fk_quota_holds_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
