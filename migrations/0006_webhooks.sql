-- Webhook endpoints a user registers, and one delivery per endpoint, job and event.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id CHAR(32) NOT NULL PRIMARY KEY,
    owner_id BIGINT UNSIGNED NOT NULL,
    url VARCHAR(2000) NOT NULL,
    events VARCHAR(200) NOT NULL,
    secret VARCHAR(100) NOT NULL,
    disabled_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    KEY ix_webhook_endpoints_owner (owner_id),
    CONSTRAINT fk_webhook_endpoints_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id CHAR(32) NOT NULL PRIMARY KEY,
    endpoint_id CHAR(32) NOT NULL,
    job_id CHAR(32) NOT NULL,
    event VARCHAR(32) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    last_status INT NULL,
    last_error VARCHAR(200) NULL,
    next_retry_at DATETIME(6) NULL,
    delivered_at DATETIME(6) NULL,
    failed_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    UNIQUE KEY uq_webhook_deliveries_event (endpoint_id, job_id, event),
    CONSTRAINT fk_webhook_deliveries_endpoint FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
