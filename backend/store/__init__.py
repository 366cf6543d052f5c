"""The host's store: one small connection layer over SQLite (the embedded default) and
PostgreSQL (`db_url = "postgresql://..."`), the same SQL text for both, versioned
migrations (backend/store/migrations/*.sql) recorded in `schema_version`."""

from backend.store.base import Conn, Retryable, Store, database_errors, open_store

__all__ = ["Conn", "Retryable", "Store", "database_errors", "open_store"]
