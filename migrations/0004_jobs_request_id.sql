-- The request id of the upload that created the job.
ALTER TABLE jobs ADD COLUMN request_id VARCHAR(128) NULL;
