-- A delivered command without a result is sent again when its terminal comes back online
-- (backend/console/commands.py): how many times it went out; delivered_at is the last time,
-- and its timeout counts from then.
ALTER TABLE terminal_commands ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;
UPDATE terminal_commands SET deliveries = 1 WHERE delivered_at IS NOT NULL;
