-- The payment host: accounts and balances, templates, shard sequence, transactions,
-- authorizations, terminals, settlements (backend/settlement.py), enrolment tokens.
CREATE TABLE IF NOT EXISTS accounts (
    token TEXT PRIMARY KEY,
    shard_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    daily_limit INTEGER NOT NULL,
    offline_allowance INTEGER NOT NULL,
    balance INTEGER NOT NULL,
    pin_salt BLOB,
    pin_hash BLOB
);
CREATE TABLE IF NOT EXISTS templates (
    token TEXT PRIMARY KEY REFERENCES accounts(token) ON DELETE CASCADE,
    embedder_version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    shard_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    embedder_version TEXT NOT NULL,
    dim INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    tx_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    token TEXT,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    host_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS authorizations (
    tx_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    token TEXT,
    amount INTEGER NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    day TEXT NOT NULL,
    decided_at REAL NOT NULL,
    host_id TEXT NOT NULL
);
-- box_key_pem: the X25519 key shard templates are sealed to; home_shard: the shard the
-- operator registered the terminal for (never what a terminal claims).
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    public_key_pem TEXT,
    shard_id TEXT,
    shard_version INTEGER,
    last_seen REAL,
    box_key_pem TEXT,
    home_shard TEXT
);
CREATE INDEX IF NOT EXISTS auth_token_day ON authorizations (token, day);
CREATE TABLE IF NOT EXISTS settlements (
    tx_id TEXT PRIMARY KEY,
    token TEXT,
    amount INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    charged INTEGER NOT NULL DEFAULT 0,
    hold_expires_at REAL,
    row_status TEXT
);
CREATE TABLE IF NOT EXISTS enrolment_tokens (
    token_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
