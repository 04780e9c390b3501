-- One sender per webhook delivery; the sweeper finds ended jobs by status and finished_at.
ALTER TABLE webhook_deliveries ADD COLUMN holder VARCHAR(64) NULL;
ALTER TABLE webhook_deliveries ADD COLUMN held_until DATETIME(6) NULL;
CREATE INDEX ix_jobs_status_finished ON jobs (status, finished_at);
