-- Initial schema (SQLite). Keep in step with postgres/0001_init.sql: same
-- tables, columns and indexes; only the type names differ.
-- Timestamps are BIGINT unix nanoseconds UTC. Booleans are BOOLEAN (stored
-- as 0/1 by SQLite). Durations are BIGINT nanoseconds.

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    host         TEXT NOT NULL,
    endpoint     TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    username     TEXT NOT NULL,
    insecure     BOOLEAN NOT NULL,
    enabled      BOOLEAN NOT NULL,
    version      INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE credential_secrets (
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    sealed        BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (credential_id, version)
);

CREATE TABLE installs (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    cluster         TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    service_account TEXT NOT NULL,
    repos           TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    generation      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    public_key  BLOB NOT NULL,
    private_key BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX signing_keys_created_at ON signing_keys (created_at);

-- Audit rows name their workspace and install instead of referencing them,
-- so that the trail outlives deletions. AUTOINCREMENT: IDs are never reused,
-- which --follow (AfterID) relies on.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          BIGINT NOT NULL,
    workspace   TEXT NOT NULL,
    install     TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    node        TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    upstream    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    ref         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    method      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    status      INTEGER NOT NULL,
    duration_ns BIGINT NOT NULL
);

CREATE INDEX audit_events_workspace_install ON audit_events (workspace, install, id);
CREATE INDEX audit_events_ts ON audit_events (ts);
