-- Clusters and their nodes (the node side). Keep in step with
-- postgres/0002_clusters.sql.

CREATE TABLE clusters (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL DEFAULT '',
    join_hash    BLOB NOT NULL,
    sa_jwks      TEXT NOT NULL DEFAULT '',
    sa_issuer    TEXT NOT NULL DEFAULT '',
    sa_audience  TEXT NOT NULL DEFAULT 'pullgate',
    created_at   BIGINT NOT NULL
);

CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    cluster_id  TEXT NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    revoked     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX nodes_cluster ON nodes (cluster_id);
CREATE INDEX installs_cluster ON installs (cluster);
