-- An alert's reason as its health's parts (backend/console/alerts.py): the message and its
-- named values as JSON, rendered in the reader's language. Alerts raised before keep their
-- English reason, shown as it is.
ALTER TABLE alerts ADD COLUMN reason_parts TEXT;
