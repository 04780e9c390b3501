-- One email sender: the notify task claims the job's email before it sends.
ALTER TABLE jobs ADD COLUMN notify_holder VARCHAR(64) NULL;
ALTER TABLE jobs ADD COLUMN notify_until DATETIME(6) NULL;
