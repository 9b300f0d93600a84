package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
)

// Deleting a workspace that still has installs or clusters is refused
// unless forced; forced, it removes its clusters with their nodes too and
// leaves no orphan (issue 11, item 3).
func TestDeleteWorkspaceInUse(t *testing.T) { forEachStore(t, testDeleteWorkspaceInUse) }

func testDeleteWorkspaceInUse(t *testing.T, s *SQL) {
	ctx := context.Background()
	acme := mustWorkspace(t, s, "acme")
	other := mustWorkspace(t, s, "other")
	edge, err := s.CreateCluster(ctx, Cluster{Name: "edge", WorkspaceID: acme.ID}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := s.CreateNode(ctx, edge.ID, n, []byte("secret-hash")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateCluster(ctx, Cluster{Name: "shared"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCluster(ctx, Cluster{Name: "edge-other", WorkspaceID: other.ID}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	mustCredential(t, s, "acme", "gh", "s")
	for _, in := range []Install{
		{Name: "web", Cluster: "edge", Enabled: true},
		{Name: "api", Cluster: "shared", Namespace: "shop", Enabled: true},
	} {
		if _, err := s.CreateInstall(ctx, "acme", in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateInstall(ctx, "other", Install{Name: "web", Cluster: "shared", Namespace: "other", Enabled: true}); err != nil {
		t.Fatal(err)
	}

	_, err = s.DeleteWorkspace(ctx, "acme", false)
	var inUse *WorkspaceInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrConflict) {
		t.Fatalf("delete in use = %v, want a WorkspaceInUseError", err)
	}
	for _, want := range []string{"2 install(s) (api, web)", "1 cluster(s) (edge, 2 node(s))", "1 registry credential(s) (gh)", "force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := s.GetWorkspace(ctx, "acme"); err != nil {
		t.Fatalf("refused delete removed the workspace: %v", err)
	}
	if nodes, err := s.ListNodes(ctx, "edge"); err != nil || len(nodes) != 2 {
		t.Fatalf("refused delete touched the nodes: %v %v", nodes, err)
	}

	got, err := s.DeleteWorkspace(ctx, "acme", true)
	if err != nil {
		t.Fatal(err)
	}
	want := WorkspaceContents{Installs: []string{"api", "web"}, Credentials: []string{"gh"}, Clusters: []WorkspaceCluster{{"edge", 2}}}
	if !slices.Equal(got.Installs, want.Installs) || !slices.Equal(got.Credentials, want.Credentials) || !slices.Equal(got.Clusters, want.Clusters) {
		t.Fatalf("forced delete removed %+v, want %+v", got, want)
	}
	// No orphan: the workspace's cluster, its nodes and join token are
	// gone; the shared cluster and the other workspace stay.
	if _, err := s.GetCluster(ctx, "edge"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cluster of the deleted workspace: %v", err)
	}
	if _, err := s.ClusterJoinHash(ctx, edge.ID); err == nil {
		t.Fatal("join token of the deleted cluster still answers")
	}
	var orphans int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT
		(SELECT COUNT(*) FROM nodes WHERE cluster_id NOT IN (SELECT id FROM clusters)) +
		(SELECT COUNT(*) FROM clusters WHERE workspace_id <> '' AND workspace_id NOT IN (SELECT id FROM workspaces)) +
		(SELECT COUNT(*) FROM installs WHERE workspace_id NOT IN (SELECT id FROM workspaces)) +
		(SELECT COUNT(*) FROM credentials WHERE workspace_id NOT IN (SELECT id FROM workspaces)) +
		(SELECT COUNT(*) FROM credential_secrets WHERE credential_id NOT IN (SELECT id FROM credentials))`)).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d orphaned rows after a forced workspace delete", orphans)
	}
	for _, c := range []string{"shared", "edge-other"} {
		if _, err := s.GetCluster(ctx, c); err != nil {
			t.Fatalf("cluster %q: %v", c, err)
		}
	}
	if _, err := s.GetInstall(ctx, "other", "web"); err != nil {
		t.Fatal(err)
	}
	// A cluster is never created for a workspace that no longer exists.
	if _, err := s.CreateCluster(ctx, Cluster{Name: "late", WorkspaceID: acme.ID}, []byte("h")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cluster for a deleted workspace: %v", err)
	}
	// A re-created workspace starts empty and may reuse the cluster name.
	again := mustWorkspace(t, s, "acme")
	if _, err := s.CreateCluster(ctx, Cluster{Name: "edge", WorkspaceID: again.ID}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	// A workspace with registry credentials only goes without force.
	mustWorkspace(t, s, "creds-only")
	mustCredential(t, s, "creds-only", "gh", "s")
	if got, err := s.DeleteWorkspace(ctx, "creds-only", false); err != nil || !slices.Equal(got.Credentials, []string{"gh"}) {
		t.Fatalf("delete of a workspace with credentials only = %+v, %v", got, err)
	}
}

// An existing install can be bound to a cluster later, with the checks of
// create; a changed binding bumps the generation (issue 11, item 11).
func TestUpdateInstallBinding(t *testing.T) { forEachStore(t, testUpdateInstallBinding) }

func testUpdateInstallBinding(t *testing.T, s *SQL) {
	ctx := context.Background()
	a := mustWorkspace(t, s, "tenant-a")
	b := mustWorkspace(t, s, "tenant-b")
	for _, c := range []Cluster{{Name: "own-a", WorkspaceID: a.ID}, {Name: "own-b", WorkspaceID: b.ID}, {Name: "shared"}} {
		if _, err := s.CreateCluster(ctx, c, []byte("h")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateInstall(ctx, "tenant-b", Install{Name: "b1", Cluster: "shared", Namespace: "ns-b", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	web, err := s.CreateInstall(ctx, "tenant-a", Install{Name: "web", Repos: []string{"ghcr.io/a/*"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	str := func(v string) *string { return &v }
	for _, tc := range []struct {
		name     string
		u        InstallUpdate
		target   error
		contains string
	}{
		{"unknown cluster", InstallUpdate{Cluster: str("nope")}, ErrInvalid, `cluster "nope" does not exist`},
		{"other workspace's cluster", InstallUpdate{Cluster: str("own-b")}, ErrInvalid, "belongs to another workspace"},
		{"shared without namespace", InstallUpdate{Cluster: str("shared")}, ErrInvalid, "needs a namespace"},
		{"namespace taken", InstallUpdate{Cluster: str("shared"), Namespace: str("ns-b")}, ErrConflict, `namespace "ns-b" on shared cluster "shared" is taken`},
		{"service account without namespace", InstallUpdate{Cluster: str("own-a"), ServiceAccount: str("sa")}, ErrInvalid, "needs a namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateInstall(ctx, "tenant-a", "web", tc.u)
			wantErr(t, err, tc.target, tc.contains)
			if got, _ := s.GetInstall(ctx, "tenant-a", "web"); got.ClusterID != "" || got.Namespace != "" || got.Generation != web.Generation {
				t.Fatalf("refused update changed the install: %+v", got)
			}
		})
	}

	got, err := s.UpdateInstall(ctx, "tenant-a", "web", InstallUpdate{Cluster: str("own-a")})
	if err != nil || got.Cluster != "own-a" || got.ClusterID == "" || got.Generation != web.Generation+1 || !slices.Equal(got.Repos, web.Repos) {
		t.Fatalf("bind = %+v, %v", got, err)
	}
	if ins, _ := s.InstallsByCluster(ctx, got.ClusterID); len(ins) != 1 || ins[0].Name != "web" {
		t.Fatalf("installs of own-a = %+v", ins)
	}
	// The same binding again changes nothing.
	same, err := s.UpdateInstall(ctx, "tenant-a", "web", InstallUpdate{Cluster: str("own-a")})
	if err != nil || same.Generation != got.Generation {
		t.Fatalf("same binding = %+v, %v", same, err)
	}
	moved, err := s.UpdateInstall(ctx, "tenant-a", "web", InstallUpdate{Cluster: str("shared"), Namespace: str("ns-a"), ServiceAccount: str("puller")})
	if err != nil || moved.Cluster != "shared" || moved.Namespace != "ns-a" || moved.ServiceAccount != "puller" || moved.Generation != got.Generation+1 {
		t.Fatalf("move to shared = %+v, %v", moved, err)
	}
	if fresh, _ := s.GetInstall(ctx, "tenant-a", "web"); fresh.Cluster != "shared" || fresh.Namespace != "ns-a" || fresh.ServiceAccount != "puller" {
		t.Fatalf("stored = %+v", fresh)
	}
	unbound, err := s.UpdateInstall(ctx, "tenant-a", "web", InstallUpdate{Cluster: str("")})
	if err != nil || unbound.Cluster != "" || unbound.ClusterID != "" || unbound.Generation != moved.Generation+1 {
		t.Fatalf("unbind = %+v, %v", unbound, err)
	}
}

// Migration 0006 removes clusters that earlier workspace deletes orphaned,
// with their nodes, and nothing else.
func TestMigration0006(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db testDB) {
		testMigration0006(t, db.mustRaw(t), &SQL{dialect: db.dialect}, db.open)
	})
}

func testMigration0006(t *testing.T, db *sql.DB, d *SQL, open func() (*SQL, error)) {
	ctx := context.Background()
	ms, err := loadMigrations(d.migrationDir())
	if err != nil {
		t.Fatal(err)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.q(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
	for _, m := range ms {
		if m.version >= 6 {
			break
		}
		for _, st := range splitStatements(m.body) {
			mustExec(st)
		}
		mustExec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, m.version)
	}
	mustExec(`INSERT INTO workspaces (id, name, created_at) VALUES ('ws_live', 'acme', 1)`)
	for _, c := range [][3]string{{"cl_live", "live", "ws_live"}, {"cl_shared", "shared", ""}, {"cl_orphan", "orphan", "ws_gone"}} {
		mustExec(`INSERT INTO clusters (id, name, workspace_id, join_hash, created_at) VALUES (?, ?, ?, ?, 1)`, c[0], c[1], c[2], []byte{0})
		mustExec(`INSERT INTO nodes (id, cluster_id, name, secret_hash, revoked, created_at) VALUES (?, ?, 'n', ?, ?, 1)`, "node_"+c[1], c[0], []byte{1}, false)
	}
	mustExec(`INSERT INTO installs (id, workspace_id, name, cluster_id, namespace, service_account, repos, enabled, generation, created_at, updated_at)
		VALUES ('i1', 'ws_live', 'web', 'cl_live', '', '', '[]', ?, 1, 1, 1)`, true)
	db.Close()

	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetCluster(ctx, "orphan"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphaned cluster after migration: %v", err)
	}
	if _, _, err := s.NodeByID(ctx, "node_orphan"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("node of the orphaned cluster after migration: %v", err)
	}
	for _, c := range []string{"live", "shared"} {
		if _, err := s.GetCluster(ctx, c); err != nil {
			t.Fatalf("cluster %s after migration: %v", c, err)
		}
		if _, _, err := s.NodeByID(ctx, "node_"+c); err != nil {
			t.Fatalf("node of %s after migration: %v", c, err)
		}
	}
	if in, err := s.InstallByID(ctx, "i1"); err != nil || in.ClusterID != "cl_live" || in.Generation != 1 {
		t.Fatalf("install after migration: %+v %v", in, err)
	}
	// The name is free again.
	if _, err := s.CreateCluster(ctx, Cluster{Name: "orphan"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
}
