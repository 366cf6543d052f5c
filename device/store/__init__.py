"""SQLite store: encrypted template shard, accounts, ledger/outbox, audit."""
