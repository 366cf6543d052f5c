-- An embedder change without stored photos (docs/matching.md, "Changing the embedder";
-- backend/retemplating.py): the embedder a shard is migrating to, and the customers'
-- templates of that embedder, from a paid live face (source 'payment', bound to its
-- transaction) or from an enrolment. They reach terminals only when the operator switches
-- the shard.
ALTER TABLE shards ADD COLUMN migrating_to TEXT;
ALTER TABLE shards ADD COLUMN migrating_dim INTEGER;
CREATE TABLE IF NOT EXISTS next_templates (
    token TEXT NOT NULL REFERENCES accounts(token) ON DELETE CASCADE,
    embedder_version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('enrolment', 'payment')),
    tx_id TEXT,
    device_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (token, embedder_version)
);
