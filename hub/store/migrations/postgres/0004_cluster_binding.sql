-- Installs reference their cluster by id, service-account keys offered by
-- agents are proposals an operator approves, and join tokens may be
-- one-time, capped or expiring. Keep in step with
-- sqlite/0004_cluster_binding.sql.

-- An install bound to a cluster name outlived the cluster and attached to
-- any later cluster of that name. Existing bindings move to the cluster's
-- id; a binding to a cluster that no longer exists is dropped (the install
-- stays, unbound).
ALTER TABLE installs ADD COLUMN cluster_id TEXT REFERENCES clusters (id);
UPDATE installs SET cluster_id = (SELECT c.id FROM clusters c WHERE c.name = installs.cluster) WHERE cluster <> '';
DROP INDEX installs_cluster;
ALTER TABLE installs DROP COLUMN cluster;
CREATE INDEX installs_cluster_namespace ON installs (cluster_id, namespace);

-- The last key set (and issuer) an agent offered that differs from the
-- approved one, which node offered it and when. Never trusted by itself.
ALTER TABLE clusters ADD COLUMN sa_jwks_proposed TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN sa_issuer_proposed TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN sa_proposed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN sa_proposed_at BIGINT NOT NULL DEFAULT 0;

-- Keys of a shared cluster without an issuer were pinned on first use by
-- whichever node synced first (an operator's --sa-jwks normally comes with
-- --sa-issuer): they become a proposal the operator must approve.
UPDATE clusters SET sa_jwks_proposed = sa_jwks, sa_proposed_by = 'before-upgrade', sa_proposed_at = created_at, sa_jwks = ''
    WHERE workspace_id = '' AND sa_issuer = '' AND sa_jwks <> '';

-- Enrolments the join token still allows (-1: unlimited) and when it
-- expires (0: never).
ALTER TABLE clusters ADD COLUMN join_uses_left BIGINT NOT NULL DEFAULT -1;
ALTER TABLE clusters ADD COLUMN join_expires_at BIGINT NOT NULL DEFAULT 0;
