-- Conversion jobs, owned by a user.
CREATE TABLE IF NOT EXISTS jobs (
    id CHAR(32) NOT NULL PRIMARY KEY,
    owner_id BIGINT UNSIGNED NOT NULL,
    status ENUM('queued','converting','done','failed') NOT NULL,
    progress DOUBLE NOT NULL DEFAULT 0,
    error VARCHAR(1000) NULL,
    video_fid VARCHAR(64) NOT NULL,
    video_filename VARCHAR(255) NOT NULL,
    video_size BIGINT UNSIGNED NOT NULL,
    bitrate VARCHAR(8) NOT NULL,
    mp3_fid VARCHAR(64) NULL,
    mp3_size BIGINT UNSIGNED NULL,
    duration_s DOUBLE NULL,
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    updated_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    started_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    notified_at DATETIME(6) NULL,
    notify_error VARCHAR(1000) NULL,
    KEY ix_jobs_owner_created (owner_id, created_at),
    KEY ix_jobs_status_updated (status, updated_at),
    CONSTRAINT fk_jobs_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
