-- The operator console's operations (backend/console): telemetry history (every report for
-- a day, per-minute aggregates for a month; history.py), terminal events, alerts and their
-- deliveries (alerts.py, delivery.py), commands with a lifecycle (commands.py).
CREATE TABLE IF NOT EXISTS telemetry_raw (
    device_id TEXT NOT NULL,
    ts REAL NOT NULL,
    minute INTEGER NOT NULL,
    fps REAL,
    cpu_temp_c REAL,
    outbox_depth INTEGER,
    liveness_rejections INTEGER,
    embed_p95 REAL,
    detect_p95 REAL,
    approved INTEGER,
    declined INTEGER,
    rolled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, ts)
);
CREATE INDEX IF NOT EXISTS telemetry_raw_rolled ON telemetry_raw (rolled, minute);
CREATE TABLE IF NOT EXISTS telemetry_minute (
    device_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    fps REAL,
    cpu_temp_c REAL,
    outbox_depth INTEGER,
    liveness_rejections INTEGER,
    embed_p95 REAL,
    detect_p95 REAL,
    approved INTEGER,
    declined INTEGER,
    PRIMARY KEY (device_id, minute)
);
CREATE TABLE IF NOT EXISTS terminal_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    outcome TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS terminal_events_device ON terminal_events (device_id, ts);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    raised_at REAL NOT NULL,
    cleared_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (cleared_at, device_id);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    target TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_commands (
    request_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    operator TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    status TEXT NOT NULL,
    delivered_at REAL,
    finished_at REAL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS terminal_commands_device ON terminal_commands (device_id, status);
