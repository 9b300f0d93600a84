-- Akash leases (issue 15): tenants prove control of an Akash account by
-- an ADR-036 signature and own a workspace on the provider's hub; the
-- provider's binding controller reports the lease namespaces of a cluster;
-- installs marked for Akash are served in their owner's lease namespaces.
-- Times are Unix nanoseconds. Keep in step with sqlite/0010_akash.sql.

-- A login challenge: single use (login deletes it, right or wrong) and
-- short-lived. message is the exact text the tenant signs.
CREATE TABLE akash_challenges (
    id         TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX akash_challenges_expires ON akash_challenges (expires_at);

-- An Akash account (bech32 akash1...) and the workspace it owns. user_id
-- is the user a verified login made the workspace's owner; NULL while the
-- workspace exists only because the provider imported the account's SDL
-- credentials (opt-in) and nobody has logged in yet.
CREATE TABLE akash_accounts (
    address      TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL UNIQUE REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    verified_at  BIGINT NOT NULL
);

-- A lease namespace on a cluster, as the cluster's binding controller
-- reported it. The namespace name is the provider's hash of the lease id,
-- checked on write.
CREATE TABLE akash_leases (
    cluster_id TEXT NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    namespace  TEXT NOT NULL,
    owner      TEXT NOT NULL,
    dseq       BIGINT NOT NULL,
    gseq       BIGINT NOT NULL,
    oseq       BIGINT NOT NULL,
    provider   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, namespace)
);

CREATE INDEX akash_leases_owner ON akash_leases (owner);

-- installs.akash: '' (not for Akash), 'all' (every lease namespace of the
-- workspace's account) or a deployment sequence number in decimal.
ALTER TABLE installs ADD COLUMN akash TEXT NOT NULL DEFAULT '';

-- clusters.akash_provider: the provider address (akash1...) whose leases
-- the cluster runs ('' = no Akash); akash_controller: "namespace:name" of
-- the service account of its binding controller.
ALTER TABLE clusters ADD COLUMN akash_provider TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN akash_controller TEXT NOT NULL DEFAULT '';
