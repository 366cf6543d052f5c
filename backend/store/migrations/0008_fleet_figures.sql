-- The console's fleet page reads, per terminal, today's transactions by status and the last
-- one (backend/console/fleet_figures.py): without this index both scanned every
-- transaction ever kept (0.8 s at a million rows, on every refresh). With it, the last one
-- is one index seek per terminal and today's counts read only today's index entries.
CREATE INDEX IF NOT EXISTS transactions_by_device ON transactions (device_id, received_at, status);
-- The people each terminal turned away today (liveness refused, face unknown, face swapped):
-- a range of this index per event type, not every event kept.
CREATE INDEX IF NOT EXISTS terminal_events_type_ts ON terminal_events (type, ts, device_id);
