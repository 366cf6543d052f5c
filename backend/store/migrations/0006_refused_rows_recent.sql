-- The console reads the terminals with a row refused lately every second (a refused row
-- keeps its terminal `degraded`: backend/console/service.py, refused_rows_lately).
CREATE INDEX IF NOT EXISTS refused_rows_received_at ON refused_rows (received_at);
