-- Clusters orphaned by workspace deletes before a workspace delete took its
-- clusters with it (issue 11, item 3). Keep in step with the other
-- dialect's 0006_orphan_clusters.sql.
--
-- Such a cluster names a workspace id that no longer exists and is never
-- reused, so no install can bind to it again; its nodes stayed enrolled and
-- its name stayed taken. It goes with its nodes. (Installs cannot be bound
-- to it, as only its own workspace's could; any binding is dropped all the
-- same, with a generation bump, so that the delete cannot fail.)
UPDATE installs SET cluster_id = NULL, generation = generation + 1
    WHERE cluster_id IN (SELECT c.id FROM clusters c WHERE c.workspace_id <> '' AND c.workspace_id NOT IN (SELECT w.id FROM workspaces w));
DELETE FROM nodes
    WHERE cluster_id IN (SELECT c.id FROM clusters c WHERE c.workspace_id <> '' AND c.workspace_id NOT IN (SELECT w.id FROM workspaces w));
DELETE FROM clusters
    WHERE workspace_id <> '' AND workspace_id NOT IN (SELECT w.id FROM workspaces w);
