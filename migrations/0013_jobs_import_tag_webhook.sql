-- Import by URL: a job may wait in status 'fetching' while a fetch worker downloads its
-- video (bytes so far, and the total when the server said it); each job may carry its
-- owner's tag and a webhook URL of its own, signed with the account's signing secret.
ALTER TABLE jobs MODIFY status ENUM('fetching','queued','converting','done','failed','cancelled','expired') NOT NULL;
ALTER TABLE jobs ADD COLUMN source_url VARCHAR(2048) NULL;
ALTER TABLE jobs ADD COLUMN fetched_bytes BIGINT UNSIGNED NULL;
ALTER TABLE jobs ADD COLUMN fetch_total BIGINT UNSIGNED NULL;
ALTER TABLE jobs ADD COLUMN tag VARCHAR(255) NULL;
ALTER TABLE jobs ADD COLUMN webhook_url VARCHAR(2000) NULL;
CREATE INDEX ix_jobs_owner_tag ON jobs (owner_id, tag);
ALTER TABLE users ADD COLUMN webhook_secret VARCHAR(100) NULL;
-- A job's own webhook_url is a receiver of that job alone, deleted with it.
ALTER TABLE webhook_endpoints ADD COLUMN job_id CHAR(32) NULL;
ALTER TABLE webhook_endpoints ADD CONSTRAINT fk_webhook_endpoints_job FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE;
