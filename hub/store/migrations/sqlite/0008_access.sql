-- Per-workspace access (issue 13): users, their workspace memberships and
-- roles, their API tokens (stored hashed), console sessions (stored
-- hashed) and the audit of operator actions. Keep in step with
-- postgres/0008_access.sql.

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- role: owner, operator or viewer.
CREATE TABLE memberships (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, workspace_id)
);

CREATE INDEX memberships_workspace ON memberships (workspace_id);

-- hash is the SHA-256 of the token; the token itself is never stored.
-- Times are 0 when unset (no expiry, never used, not revoked).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description  TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- A console session, by the SHA-256 of its cookie value. A user's session
-- names the API token it was opened with (and ends with it); an admin
-- session holds a fingerprint of the admin token it was opened with, so
-- that a new admin token ends it.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    hash         BLOB NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_id     TEXT REFERENCES api_tokens (id) ON DELETE CASCADE,
    admin_fp     BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE INDEX sessions_expires ON sessions (expires_at);

-- The audit of operator actions (not pulls: audit_events). Names instead
-- of references, so that it outlives what it names. Never a secret.
CREATE TABLE activity (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             BIGINT NOT NULL,
    principal_kind TEXT NOT NULL,
    principal      TEXT NOT NULL,
    token_id       TEXT NOT NULL,
    action         TEXT NOT NULL,
    target_kind    TEXT NOT NULL,
    target         TEXT NOT NULL,
    workspace      TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    remote_addr    TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    status         INTEGER NOT NULL,
    result         TEXT NOT NULL
);

CREATE INDEX activity_workspace ON activity (workspace_id, id);
CREATE INDEX activity_ts ON activity (ts);
