-- Cancelled and expired jobs; a job keeps no video once it ended (KEEP_SOURCE=false).
ALTER TABLE jobs MODIFY status ENUM('queued','converting','done','failed','cancelled','expired') NOT NULL;
ALTER TABLE jobs MODIFY video_fid VARCHAR(64) NULL;
ALTER TABLE jobs ADD COLUMN expires_at DATETIME(6) NULL;
CREATE INDEX ix_jobs_status_expires ON jobs (status, expires_at);
