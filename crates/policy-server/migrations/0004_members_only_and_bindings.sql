-- A room may admit only users who authenticate (with `--auth rooms`).
ALTER TABLE rooms ADD COLUMN members_only INTEGER NOT NULL DEFAULT 0;

-- Registered contacts (RFC 3261 §10), so that a restart keeps them: one
-- row per contact of an address of record. `path` is the Path headers
-- joined by newlines; `source` the flow the REGISTER came over
-- ("udp:192.0.2.4:5060"), empty when unknown.
CREATE TABLE bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    q INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX bindings_expiry ON bindings (expires_at);
