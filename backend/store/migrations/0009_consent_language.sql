-- The consent text is shown in the customer's language (backend/console/consent.py): which
-- one the customer read. Records from before were all given on the English text.
ALTER TABLE consents ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
