-- The operator console (backend/console/store.py): operators, sessions, the audit log,
-- consent records, erasure requests, terminal shard acknowledgements, config versions.
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    pw_salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    created_at REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    operator TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    client TEXT
);
CREATE TABLE IF NOT EXISTS consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL,
    version TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    given_at REAL NOT NULL,
    operator TEXT NOT NULL,
    withdrawn_at REAL
);
CREATE TABLE IF NOT EXISTS erasures (
    token TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    requested_at REAL NOT NULL,
    operator TEXT NOT NULL,
    PRIMARY KEY (shard_id, seq)
);
CREATE TABLE IF NOT EXISTS terminal_shard_acks (
    device_id TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    first_acked_at REAL NOT NULL,
    PRIMARY KEY (device_id, shard_id, version)
);
CREATE TABLE IF NOT EXISTS terminal_configs (
    device_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    sent_at REAL NOT NULL,
    operator TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'sent',
    reason TEXT,
    PRIMARY KEY (device_id, version)
);
CREATE INDEX IF NOT EXISTS consents_token ON consents (token);
