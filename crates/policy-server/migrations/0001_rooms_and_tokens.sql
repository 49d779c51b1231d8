-- Rooms and their policy; API tokens stored as SHA-256 hashes.
CREATE TABLE rooms (
    name TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    locked INTEGER NOT NULL DEFAULT 0,
    max_participants INTEGER NOT NULL DEFAULT 0,
    pin TEXT,
    moderator_pin TEXT,
    watchers TEXT NOT NULL DEFAULT '',
    mute_on_entry INTEGER NOT NULL DEFAULT 0,
    talkers_mixed INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'viewer')),
    rooms TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
