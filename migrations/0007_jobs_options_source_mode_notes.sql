-- Audio options asked for, what the source held, how it was converted, notes for the user.
ALTER TABLE jobs ADD COLUMN options JSON NULL;
ALTER TABLE jobs ADD COLUMN source JSON NULL;
ALTER TABLE jobs ADD COLUMN mode VARCHAR(8) NULL;
ALTER TABLE jobs ADD COLUMN notes JSON NULL;
