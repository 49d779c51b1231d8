-- A room's own SRTP mode ('off', 'optional', 'required'); NULL follows the
-- server's `--srtp`.
ALTER TABLE rooms ADD COLUMN srtp TEXT;
