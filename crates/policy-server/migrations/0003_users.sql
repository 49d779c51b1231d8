-- SIP users for digest authentication (RFC 7616): only the HA1 values
-- H(name:realm:password) for MD5 and SHA-256 are kept, never the password.
CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL,
    realm TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
