-- Trust bound end to end (docs/security.md, docs/broker.md): the host's PIN try counter
-- and its unlocks (backend/pin_tries.py), what offline approvals took from each customer's
-- allowance and the rows the transaction rules refused (backend/tx_rules.py), and the
-- site broker's credentials (backend/broker.py: only a hash of each password is kept).
CREATE TABLE IF NOT EXISTS pin_tries (
    token TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at REAL,
    locked_at REAL
);
CREATE TABLE IF NOT EXISTS pin_unlocks (
    token TEXT NOT NULL,
    unlocked_at REAL NOT NULL,
    operator TEXT NOT NULL,
    failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS offline_spend (
    tx_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    token TEXT NOT NULL,
    day TEXT NOT NULL,
    amount INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_spend_day ON offline_spend (device_id, token, day);
CREATE TABLE IF NOT EXISTS refused_rows (
    device_id TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (device_id, tx_id, status)
);
CREATE TABLE IF NOT EXISTS broker_users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('terminal', 'host', 'monitor')),
    shard_id TEXT,
    password_hash TEXT NOT NULL,
    issued_at REAL NOT NULL
);
