package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// A cluster that installs are bound to is not deleted silently, and a new
// cluster of the same name never inherits anything (review finding 5).
func TestDeleteClusterWithInstalls(t *testing.T) { forEachStore(t, testDeleteClusterWithInstalls) }

func testDeleteClusterWithInstalls(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "victim")
	mustWorkspace(t, s, "evil")
	old, err := s.CreateCluster(ctx, Cluster{Name: "prov-x"}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.CreateInstall(ctx, "victim", Install{Name: "a-app", Cluster: "prov-x", Namespace: "ns-a", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.DeleteCluster(ctx, "prov-x", false)
	var inUse *ClusterInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "victim/a-app") {
		t.Fatalf("delete with a bound install: %v", err)
	}
	if _, err := s.GetCluster(ctx, "prov-x"); err != nil {
		t.Fatalf("refused delete removed the cluster: %v", err)
	}

	unbound, err := s.DeleteCluster(ctx, "prov-x", true)
	if err != nil || len(unbound) != 1 || unbound[0].ID != in.ID || unbound[0].ClusterID != "" || unbound[0].Generation != in.Generation+1 {
		t.Fatalf("forced delete = %+v, %v", unbound, err)
	}
	got, _ := s.GetInstall(ctx, "victim", "a-app")
	if got.Cluster != "" || got.ClusterID != "" || got.Generation != in.Generation+1 {
		t.Fatalf("install after forced delete = %+v", got)
	}

	// Another tenant creates a cluster of the same name: it has no installs.
	again, err := s.CreateCluster(ctx, Cluster{Name: "prov-x"}, []byte("h2"))
	if err != nil || again.ID == old.ID {
		t.Fatalf("re-create: %+v %v", again, err)
	}
	if ins, err := s.InstallsByCluster(ctx, again.ID); err != nil || len(ins) != 0 {
		t.Fatalf("new cluster inherited installs: %+v %v", ins, err)
	}
	if got, _ := s.GetInstall(ctx, "victim", "a-app"); got.Cluster != "" {
		t.Fatalf("install shows the new cluster: %+v", got)
	}
	// And the evil workspace can now use ns-a on it (nothing else does).
	if _, err := s.CreateInstall(ctx, "evil", Install{Name: "e", Cluster: "prov-x", Namespace: "ns-a", Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

// Installs check the cluster they name in the creating transaction.
func TestInstallClusterBinding(t *testing.T) { forEachStore(t, testInstallClusterBinding) }

func testInstallClusterBinding(t *testing.T, s *SQL) {
	ctx := context.Background()
	a := mustWorkspace(t, s, "tenant-a")
	mustWorkspace(t, s, "tenant-b")
	if _, err := s.CreateCluster(ctx, Cluster{Name: "shared"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCluster(ctx, Cluster{Name: "own-a", WorkspaceID: a.ID}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInstall(ctx, "tenant-a", Install{Name: "a1", Cluster: "shared", Namespace: "ns-a", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ws         string
		in               Install
		target           error
		contains, hidden string
	}{
		{"unknown cluster", "tenant-a", Install{Name: "x", Cluster: "nope", Namespace: "n"}, ErrInvalid, `cluster "nope" does not exist`, ""},
		{"other workspace's cluster", "tenant-b", Install{Name: "x", Cluster: "own-a"}, ErrInvalid, "belongs to another workspace", "tenant-a"},
		{"shared without namespace", "tenant-b", Install{Name: "x", Cluster: "shared"}, ErrInvalid, "needs a namespace", ""},
		// Finding 12: a second workspace on the same (shared cluster,
		// namespace), without naming who holds it.
		{"namespace taken", "tenant-b", Install{Name: "squat", Cluster: "shared", Namespace: "ns-a"}, ErrConflict, `namespace "ns-a" on shared cluster "shared" is taken by another workspace`, "tenant-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateInstall(ctx, tc.ws, tc.in)
			wantErr(t, err, tc.target, tc.contains)
			if tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) || strings.Contains(err.Error(), "a1") {
				t.Fatalf("error discloses another tenant: %v", err)
			}
			if _, err := s.GetInstall(ctx, tc.ws, tc.in.Name); !errors.Is(err, ErrNotFound) {
				t.Fatalf("refused install was stored: %v", err)
			}
		})
	}
	// The same workspace may add more installs in its namespace, and
	// another workspace may use another namespace.
	if _, err := s.CreateInstall(ctx, "tenant-a", Install{Name: "a2", Cluster: "shared", Namespace: "ns-a", ServiceAccount: "sa", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInstall(ctx, "tenant-b", Install{Name: "b1", Cluster: "shared", Namespace: "ns-b", Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

// Two workspaces racing for one namespace of a shared cluster: exactly one
// gets it.
func TestSharedNamespaceRace(t *testing.T) { forEachStore(t, testSharedNamespaceRace) }

func testSharedNamespaceRace(t *testing.T, s *SQL) {
	ctx := context.Background()
	if _, err := s.CreateCluster(ctx, Cluster{Name: "shared"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	const n = 8
	for i := range n {
		mustWorkspace(t, s, "ws"+string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateInstall(ctx, "ws"+string(rune('a'+i)), Install{Name: "x", Cluster: "shared", Namespace: "contested", Enabled: true})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrConflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d workspaces got the namespace, want 1", ok)
	}
}

func TestJoinTokenLimits(t *testing.T) { forEachStore(t, testJoinTokenLimits) }

func testJoinTokenLimits(t *testing.T, s *SQL) {
	ctx := context.Background()
	c, err := s.CreateCluster(ctx, Cluster{Name: "edge"}, []byte("h"))
	if err != nil || c.JoinUsesLeft != -1 {
		t.Fatalf("create: %+v %v", c, err)
	}
	// Reusable by default.
	for i := range 3 {
		if _, err := s.EnrolNode(ctx, c.ID, "n", []byte("s")); err != nil {
			t.Fatalf("enrol %d with a reusable token: %v", i, err)
		}
	}
	// Two uses.
	if err := s.RotateJoinTokenLimited(ctx, "edge", []byte("h2"), JoinLimit{Uses: 2}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCluster(ctx, "edge"); got.JoinUsesLeft != 2 {
		t.Fatalf("uses left %d", got.JoinUsesLeft)
	}
	for i := range 2 {
		if _, err := s.EnrolNode(ctx, c.ID, "n", []byte("s")); err != nil {
			t.Fatalf("enrol %d: %v", i, err)
		}
	}
	if _, err := s.EnrolNode(ctx, c.ID, "n", []byte("s")); !errors.Is(err, ErrJoinTokenSpent) {
		t.Fatalf("third enrol: %v", err)
	}
	if _, err := s.ClusterJoinHash(ctx, c.ID); !errors.Is(err, ErrJoinTokenSpent) {
		t.Fatalf("join hash of a spent token: %v", err)
	}
	if got, _ := s.GetCluster(ctx, "edge"); got.JoinUsesLeft != 0 {
		t.Fatalf("uses left %d", got.JoinUsesLeft)
	}
	// Expiry.
	if err := s.RotateJoinTokenLimited(ctx, "edge", []byte("h3"), JoinLimit{ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnrolNode(ctx, c.ID, "n", []byte("s")); !errors.Is(err, ErrJoinTokenSpent) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("enrol with an expired token: %v", err)
	}
	if _, err := s.ClusterJoinHash(ctx, c.ID); !errors.Is(err, ErrJoinTokenSpent) {
		t.Fatalf("join hash of an expired token: %v", err)
	}
	if err := s.RotateJoinTokenLimited(ctx, "edge", []byte("h4"), JoinLimit{ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.ClusterJoinHash(ctx, c.ID); err != nil || string(h) != "h4" {
		t.Fatalf("join hash: %q %v", h, err)
	}
	if err := s.RotateJoinTokenLimited(ctx, "edge", []byte("h5"), JoinLimit{Uses: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative uses: %v", err)
	}
}

// Concurrent enrolments with a one-time join token: exactly one node is
// created.
func TestEnrolOneTimeTokenRace(t *testing.T) { forEachStore(t, testEnrolOneTimeTokenRace) }

func testEnrolOneTimeTokenRace(t *testing.T, s *SQL) {
	ctx := context.Background()
	c, err := s.CreateCluster(ctx, Cluster{Name: "edge"}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RotateJoinTokenLimited(ctx, "edge", []byte("h1"), JoinLimit{Uses: 1}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.EnrolNode(ctx, c.ID, "racer", []byte("s"))
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrJoinTokenSpent):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	nodes, _ := s.ListNodes(ctx, "edge")
	if ok != 1 || len(nodes) != 1 {
		t.Fatalf("%d enrolments succeeded, %d nodes; want exactly 1", ok, len(nodes))
	}
}

func TestClusterJWKSProposal(t *testing.T) { forEachStore(t, testClusterJWKSProposal) }

func testClusterJWKSProposal(t *testing.T, s *SQL) {
	ctx := context.Background()
	c, err := s.CreateCluster(ctx, Cluster{Name: "shared"}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ProposeClusterJWKS(ctx, c.ID, JWKSProposal{JWKS: []byte(`{"keys":[1]}`), Issuer: "https://k", NodeID: "node_1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetCluster(ctx, "shared")
	if len(got.SAJWKS) != 0 || string(got.Proposal.JWKS) != `{"keys":[1]}` || got.Proposal.NodeID != "node_1" || got.Proposal.Issuer != "https://k" || got.Proposal.At.IsZero() {
		t.Fatalf("after proposal: %+v", got)
	}
	// Approving what was shown, after the proposal changed: refused.
	s.ProposeClusterJWKS(ctx, c.ID, JWKSProposal{JWKS: []byte(`{"keys":[2]}`), NodeID: "node_2"})
	if _, err := s.ApproveClusterJWKS(ctx, "shared", JWKSProposal{JWKS: []byte(`{"keys":[1]}`), Issuer: "https://k"}, "https://k"); !errors.Is(err, ErrConflict) {
		t.Fatalf("approve a stale proposal: %v", err)
	}
	if got, _ := s.GetCluster(ctx, "shared"); len(got.SAJWKS) != 0 {
		t.Fatal("stale approve changed the keys")
	}
	// Same keys, but the proposal's issuer changed since it was read.
	if _, err := s.ApproveClusterJWKS(ctx, "shared", JWKSProposal{JWKS: []byte(`{"keys":[2]}`), Issuer: "https://other"}, "https://other"); !errors.Is(err, ErrConflict) {
		t.Fatalf("approve with a stale issuer: %v", err)
	}
	got, err = s.ApproveClusterJWKS(ctx, "shared", JWKSProposal{JWKS: []byte(`{"keys":[2]}`)}, "https://k2")
	if err != nil || string(got.SAJWKS) != `{"keys":[2]}` || got.SAIssuer != "https://k2" || len(got.Proposal.JWKS) != 0 {
		t.Fatalf("approve: %+v %v", got, err)
	}
	got, err = s.SetClusterJWKS(ctx, "shared", []byte(`{"keys":[3]}`), "https://k3")
	if err != nil || string(got.SAJWKS) != `{"keys":[3]}` || got.SAIssuer != "https://k3" {
		t.Fatalf("set: %+v %v", got, err)
	}
	if _, err := s.SetClusterJWKS(ctx, "nope", []byte(`{}`), ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set on unknown cluster: %v", err)
	}
	if _, err := s.ApproveClusterJWKS(ctx, "shared", JWKSProposal{}, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("approve nothing: %v", err)
	}
}

// Migration 0004 moves install bindings from cluster names to ids, drops
// bindings to clusters that no longer exist, and demotes keys a shared
// cluster pinned on first use to a proposal.
func TestMigration0004(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db testDB) {
		testMigration0004(t, db.mustRaw(t), &SQL{dialect: db.dialect}, db.open)
	})
}

func testMigration0004(t *testing.T, db *sql.DB, d *SQL, open func() (*SQL, error)) {
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
		if m.version >= 4 {
			break
		}
		for _, st := range splitStatements(m.body) {
			mustExec(st)
		}
		mustExec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, m.version)
	}
	mustExec(`INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'acme', 1)`)
	for _, c := range [][4]string{
		{"cl_own", "own", "ws_1", `{"keys":["own"]}`},
		{"cl_op", "op", "", `{"keys":["op"]}`},
		{"cl_tofu", "tofu", "", `{"keys":["tofu"]}`},
	} {
		issuer := ""
		if c[1] == "op" {
			issuer = "https://k8s"
		}
		mustExec(`INSERT INTO clusters (id, name, workspace_id, join_hash, sa_jwks, sa_issuer, created_at) VALUES (?, ?, ?, ?, ?, ?, 1)`,
			c[0], c[1], c[2], []byte{0}, c[3], issuer)
	}
	for _, in := range [][2]string{{"i1", "own"}, {"i2", "tofu"}, {"i3", "gone"}, {"i4", ""}} {
		mustExec(`INSERT INTO installs (id, workspace_id, name, cluster, namespace, service_account, repos, enabled, generation, created_at, updated_at)
			VALUES (?, 'ws_1', ?, ?, ?, '', '[]', ?, 1, 1, 1)`, in[0], in[0], in[1], "ns-"+in[0], true)
	}
	db.Close()

	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[string][2]string{"i1": {"cl_own", "own"}, "i2": {"cl_tofu", "tofu"}, "i3": {"", ""}, "i4": {"", ""}} {
		in, err := s.InstallByID(ctx, id)
		if err != nil || in.ClusterID != want[0] || in.Cluster != want[1] {
			t.Errorf("install %s after migration: %+v %v; want cluster %v", id, in, err, want)
		}
	}
	for name, want := range map[string][2]string{"own": {`{"keys":["own"]}`, ""}, "op": {`{"keys":["op"]}`, ""}, "tofu": {"", `{"keys":["tofu"]}`}} {
		c, err := s.GetCluster(ctx, name)
		if err != nil || string(c.SAJWKS) != want[0] || string(c.Proposal.JWKS) != want[1] || c.JoinUsesLeft != -1 {
			t.Errorf("cluster %s after migration: %+v %v", name, c, err)
		}
	}
	// The foreign key holds: the cluster cannot go while i1 is bound.
	if _, err := s.DeleteCluster(ctx, "own", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete a bound cluster after migration: %v", err)
	}
}
