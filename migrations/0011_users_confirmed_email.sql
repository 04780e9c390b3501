-- A changed email address waits in pending_email until its owner confirms it.
ALTER TABLE users ADD COLUMN pending_email VARCHAR(254) NULL;
ALTER TABLE users ADD COLUMN email_confirmed_at DATETIME(6) NULL;
-- Every existing account was made by an admin or before sign-ups were confirmed.
UPDATE users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL;
