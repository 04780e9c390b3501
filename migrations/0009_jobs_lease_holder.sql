-- Which process runs the attempt (host, pid and start time), so a dead attempt is taken over early.
ALTER TABLE jobs ADD COLUMN lease_holder VARCHAR(400) NULL;
