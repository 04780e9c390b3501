-- One owner per attempt: a lease the worker renews, and the sweeper's index over it.
ALTER TABLE jobs ADD COLUMN lease_id CHAR(32) NULL;
ALTER TABLE jobs ADD COLUMN lease_expires_at DATETIME(6) NULL;
CREATE INDEX ix_jobs_status_lease ON jobs (status, lease_expires_at);
