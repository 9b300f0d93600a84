package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pullgate/pullgate/pkg/akash"
)

// testAddress is a valid akash1... address made from seed.
func testAddress(t testing.TB, seed byte) string {
	t.Helper()
	key := make([]byte, 33)
	key[0] = 2
	key[1] = seed
	a, err := akash.AddressOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mustAkashAccount makes workspace ws the owner of account address (as a
// tenant login or a credential import does).
func mustAkashAccount(t testing.TB, s *SQL, ws, address string) {
	t.Helper()
	w, err := s.GetWorkspace(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(context.Background(), s.q(`INSERT INTO akash_accounts (address, workspace_id, created_at, verified_at) VALUES (?, ?, ?, ?)`),
		address, w.ID, toNanos(now()), toNanos(now())); err != nil {
		t.Fatalf("insert akash account: %v", err)
	}
}

// akashFixture is a shared cluster run by an Akash provider, workspaces a
// and b with accounts ownerA and ownerB, and c with none.
type akashFixture struct {
	cluster                  Cluster
	provider, ownerA, ownerB string
	ownerC                   string // no account
}

func newAkashFixture(t *testing.T, s *SQL) akashFixture {
	t.Helper()
	ctx := context.Background()
	f := akashFixture{provider: testAddress(t, 1), ownerA: testAddress(t, 2), ownerB: testAddress(t, 3), ownerC: testAddress(t, 4)}
	for _, ws := range []string{"a", "b"} {
		mustWorkspace(t, s, ws)
	}
	mustAkashAccount(t, s, "a", f.ownerA)
	mustAkashAccount(t, s, "b", f.ownerB)
	c, err := s.CreateCluster(ctx, Cluster{Name: "provider", AkashProvider: f.provider, AkashController: "pullgate:pullgate-akash"}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	f.cluster = c
	return f
}

func (f akashFixture) lease(owner string, dseq uint64) akash.LeaseID {
	return akash.LeaseID{Owner: owner, DSeq: dseq, GSeq: 1, OSeq: 1, Provider: f.provider}
}

func TestClusterAkashSettings(t *testing.T) { forEachStore(t, testClusterAkashSettings) }

func testClusterAkashSettings(t *testing.T, s *SQL) {
	ctx := context.Background()
	prov := testAddress(t, 1)
	w := mustWorkspace(t, s, "a")
	if _, err := s.CreateCluster(ctx, Cluster{Name: "own", WorkspaceID: w.ID}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCluster(ctx, Cluster{Name: "shared"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cluster, provider, controller string
	}{
		{"provider only", "shared", prov, ""},
		{"controller only", "shared", "", "ns:sa"},
		{"bad provider", "shared", "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud", "ns:sa"},
		{"bad controller", "shared", prov, "ns"},
		{"bad controller name", "shared", prov, "NS:sa"},
		{"single-workspace cluster", "own", prov, "ns:sa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.SetClusterAkash(ctx, tc.cluster, tc.provider, tc.controller); !errors.Is(err, ErrInvalid) {
				t.Fatalf("SetClusterAkash = %v, want ErrInvalid", err)
			}
			c, _ := s.GetCluster(ctx, tc.cluster)
			if c.AkashProvider != "" || c.AkashController != "" {
				t.Fatalf("a refused change was stored: %+v", c)
			}
		})
	}
	if _, err := s.CreateCluster(ctx, Cluster{Name: "bad", AkashProvider: prov}, []byte("h")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CreateCluster with provider only = %v, want ErrInvalid", err)
	}
	c, err := s.SetClusterAkash(ctx, "shared", prov, "pullgate:pullgate-akash")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCluster(ctx, "shared"); got.AkashProvider != prov || got.AkashController != "pullgate:pullgate-akash" || c.AkashProvider != prov {
		t.Fatalf("cluster after SetClusterAkash = %+v", got)
	}
}

func TestAkashLeaseRows(t *testing.T) { forEachStore(t, testAkashLeaseRows) }

func testAkashLeaseRows(t *testing.T, s *SQL) {
	ctx := context.Background()
	f := newAkashFixture(t, s)
	l1, l2 := f.lease(f.ownerA, 10), f.lease(f.ownerB, 20)

	// Refused: nothing stored.
	other := l1
	other.Provider = testAddress(t, 9)
	noProvider, err := s.CreateCluster(ctx, Cluster{Name: "plain"}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cluster, ns string
		l                 akash.LeaseID
	}{
		{"namespace not the lease's", f.cluster.ID, l2.Namespace(), l1},
		{"other provider", f.cluster.ID, other.Namespace(), other},
		{"cluster without provider", noProvider.ID, l1.Namespace(), l1},
		{"zero dseq", f.cluster.ID, f.lease(f.ownerA, 0).Namespace(), f.lease(f.ownerA, 0)},
		{"dseq beyond BIGINT", f.cluster.ID, f.lease(f.ownerA, 1<<63).Namespace(), f.lease(f.ownerA, 1<<63)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.PutAkashLease(ctx, tc.cluster, tc.ns, tc.l); !errors.Is(err, ErrInvalid) {
				t.Fatalf("PutAkashLease = %v, want ErrInvalid", err)
			}
			if tc.ns == tc.l.Namespace() {
				if _, _, err := s.ReplaceAkashLeases(ctx, tc.cluster, []akash.LeaseID{tc.l}); !errors.Is(err, ErrInvalid) {
					t.Fatalf("ReplaceAkashLeases = %v, want ErrInvalid", err)
				}
			}
			if ls, _ := s.AkashLeasesByCluster(ctx, tc.cluster); len(ls) != 0 {
				t.Fatalf("refused lease stored: %+v", ls)
			}
		})
	}

	created, err := s.PutAkashLease(ctx, f.cluster.ID, l1.Namespace(), l1)
	if err != nil || !created {
		t.Fatalf("PutAkashLease = %v, %v", created, err)
	}
	if created, err = s.PutAkashLease(ctx, f.cluster.ID, l1.Namespace(), l1); err != nil || created {
		t.Fatalf("PutAkashLease again = %v, %v; want an update", created, err)
	}
	// A bad lease in a full set changes nothing.
	if _, _, err := s.ReplaceAkashLeases(ctx, f.cluster.ID, []akash.LeaseID{l2, other}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReplaceAkashLeases with a bad lease = %v", err)
	}
	ls, err := s.AkashLeasesByCluster(ctx, f.cluster.ID)
	if err != nil || len(ls) != 1 || ls[0].Namespace != l1.Namespace() || ls[0].LeaseID != l1 || ls[0].Workspace != "a" || ls[0].Cluster != "provider" {
		t.Fatalf("leases = %+v, %v", ls, err)
	}
	added, removed, err := s.ReplaceAkashLeases(ctx, f.cluster.ID, []akash.LeaseID{l2})
	if err != nil || !slices.Equal(removed, []string{l1.Namespace()}) || !slices.Equal(added, []string{l2.Namespace()}) {
		t.Fatalf("ReplaceAkashLeases = %v, %v, %v; want %s added, %s removed", added, removed, err, l2.Namespace(), l1.Namespace())
	}
	if added, removed, err = s.ReplaceAkashLeases(ctx, f.cluster.ID, []akash.LeaseID{l2}); err != nil || added != nil || removed != nil {
		t.Fatalf("ReplaceAkashLeases with the same set = %v, %v, %v; want no change", added, removed, err)
	}
	if ls, _ := s.AkashLeasesByCluster(ctx, f.cluster.ID); len(ls) != 1 || ls[0].LeaseID != l2 {
		t.Fatalf("leases after replace = %+v", ls)
	}
	// Each workspace sees its own account's leases only.
	if ls, err := s.AkashLeasesByWorkspace(ctx, "a"); err != nil || len(ls) != 0 {
		t.Fatalf("leases of a = %+v, %v", ls, err)
	}
	if ls, err := s.AkashLeasesByWorkspace(ctx, "b"); err != nil || len(ls) != 1 || ls[0].Owner != f.ownerB {
		t.Fatalf("leases of b = %+v, %v", ls, err)
	}
	if ids, err := s.AkashLeaseClusters(ctx, mustWS(t, s, "b").ID); err != nil || !slices.Equal(ids, []string{f.cluster.ID}) {
		t.Fatalf("AkashLeaseClusters(b) = %v, %v", ids, err)
	}
	if err := s.DeleteAkashLease(ctx, f.cluster.ID, l1.Namespace()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteAkashLease of a removed lease = %v, want ErrNotFound", err)
	}
	if err := s.DeleteAkashLease(ctx, f.cluster.ID, l2.Namespace()); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.AkashLeasesByCluster(ctx, f.cluster.ID); len(ls) != 0 {
		t.Fatalf("leases after delete = %+v", ls)
	}
}

func mustWS(t testing.TB, s *SQL, name string) Workspace {
	t.Helper()
	w, err := s.GetWorkspace(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAkashInstallScope(t *testing.T) { forEachStore(t, testAkashInstallScope) }

func testAkashInstallScope(t *testing.T, s *SQL) {
	ctx := context.Background()
	f := newAkashFixture(t, s)
	for _, tc := range []struct {
		name string
		in   Install
	}{
		{"bad scope", Install{Name: "x", Akash: "some"}},
		{"leading zero", Install{Name: "x", Akash: "012"}},
		{"negative", Install{Name: "x", Akash: "-1"}},
		{"beyond BIGINT", Install{Name: "x", Akash: "9223372036854775808"}},
		{"with cluster", Install{Name: "x", Akash: "all", Cluster: "provider", Namespace: "ns"}},
		{"with namespace", Install{Name: "x", Akash: "all", Namespace: "ns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateInstall(ctx, "a", tc.in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("CreateInstall = %v, want ErrInvalid", err)
			}
		})
	}
	// A service account narrows an Akash install without a namespace.
	in, err := s.CreateInstall(ctx, "a", Install{Name: "web", Akash: "42", ServiceAccount: "puller", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetInstall(ctx, "a", "web"); got.Akash != "42" || got.Lease != "" {
		t.Fatalf("install = %+v", got)
	}
	all := "all"
	up, err := s.UpdateInstall(ctx, "a", "web", InstallUpdate{Akash: &all})
	if err != nil || up.Akash != "all" || up.Generation != in.Generation+1 {
		t.Fatalf("UpdateInstall(akash all) = %+v, %v; want the generation bumped", up, err)
	}
	cl, ns := "provider", "ns"
	if _, err := s.UpdateInstall(ctx, "a", "web", InstallUpdate{Cluster: &cl, Namespace: &ns}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("binding an Akash install to a cluster = %v, want ErrInvalid", err)
	}
	none := ""
	if up, err = s.UpdateInstall(ctx, "a", "web", InstallUpdate{Akash: &none, Cluster: &cl, Namespace: &ns}); err != nil || up.ClusterID != f.cluster.ID {
		t.Fatalf("clearing akash while binding = %+v, %v", up, err)
	}
}

func TestInstallsByClusterLeases(t *testing.T) { forEachStore(t, testInstallsByClusterLeases) }

func testInstallsByClusterLeases(t *testing.T, s *SQL) {
	ctx := context.Background()
	f := newAkashFixture(t, s)
	mustWorkspace(t, s, "c")
	lA10, lA11, lB, lC := f.lease(f.ownerA, 10), f.lease(f.ownerA, 11), f.lease(f.ownerB, 20), f.lease(f.ownerC, 30)
	if _, _, err := s.ReplaceAkashLeases(ctx, f.cluster.ID, []akash.LeaseID{lA10, lA11, lB, lC}); err != nil {
		t.Fatal(err)
	}
	create := func(ws string, in Install) {
		t.Helper()
		in.Enabled = true
		if _, err := s.CreateInstall(ctx, ws, in); err != nil {
			t.Fatalf("CreateInstall(%s, %s): %v", ws, in.Name, err)
		}
	}
	create("a", Install{Name: "all", Akash: "all"})
	create("a", Install{Name: "d10", Akash: "10"})
	create("a", Install{Name: "d99", Akash: "99"})
	// a's own install bound to its lease namespace explicitly: served.
	create("a", Install{Name: "explicit", Cluster: "provider", Namespace: lA10.Namespace()})
	// b squats a's lease namespace and c the namespace of a lease whose
	// owner has no account: neither is served there.
	create("b", Install{Name: "squat", Cluster: "provider", Namespace: lA11.Namespace()})
	create("c", Install{Name: "squat", Cluster: "provider", Namespace: lC.Namespace()})
	// An ordinary namespace of the shared cluster: served as always.
	create("c", Install{Name: "plain", Cluster: "provider", Namespace: "team-c"})
	create("b", Install{Name: "all", Akash: "all"})

	got, err := s.InstallsByCluster(ctx, f.cluster.ID)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, in := range got {
		ws := mustWSByID(t, s, in.WorkspaceID)
		seen = append(seen, ws+"/"+in.Name+"@"+in.Namespace+"#"+in.Lease)
		if in.ClusterID != f.cluster.ID || in.Cluster != "provider" {
			t.Errorf("%s/%s: cluster %q (%q), want the provider cluster", ws, in.Name, in.ClusterID, in.Cluster)
		}
	}
	want := []string{
		"a/explicit@" + lA10.Namespace() + "#",
		"c/plain@team-c#",
		"a/all@" + lA10.Namespace() + "#" + lA10.Namespace(),
		"a/all@" + lA11.Namespace() + "#" + lA11.Namespace(),
		"a/d10@" + lA10.Namespace() + "#" + lA10.Namespace(),
		"b/all@" + lB.Namespace() + "#" + lB.Namespace(),
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("InstallsByCluster =\n%v\nwant\n%v", seen, want)
	}

	// Lease copies do not keep a cluster in use; bound installs do.
	if _, err := s.DeleteCluster(ctx, "provider", false); err == nil {
		t.Fatal("DeleteCluster with bound installs succeeded")
	} else {
		var inUse *ClusterInUseError
		if errors.As(err, &inUse) {
			slices.Sort(inUse.Installs)
		}
		if inUse == nil || !slices.Equal(inUse.Installs, []string{"a/explicit", "b/squat", "c/plain", "c/squat"}) {
			t.Fatalf("DeleteCluster = %v, want in use by the bound installs only", err)
		}
	}
	// The provider changes: its old leases bind nothing.
	if _, err := s.SetClusterAkash(ctx, "provider", testAddress(t, 8), "pullgate:pullgate-akash"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.InstallsByCluster(ctx, f.cluster.ID)
	for _, in := range got {
		if in.Lease != "" {
			t.Fatalf("lease copy %+v after the cluster's provider changed", in)
		}
	}
}

func mustWSByID(t testing.TB, s *SQL, id string) string {
	t.Helper()
	w, err := s.WorkspaceByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return w.Name
}

func TestAkashLeaseBound(t *testing.T) { forEachStore(t, testAkashLeaseBound) }

func testAkashLeaseBound(t *testing.T, s *SQL) {
	ctx := context.Background()
	f := newAkashFixture(t, s)
	a, b := mustWS(t, s, "a"), mustWS(t, s, "b")
	l := f.lease(f.ownerA, 10)
	ns := l.Namespace()
	check := func(ws Workspace, want bool) {
		t.Helper()
		got, err := s.AkashLeaseBound(ctx, f.cluster.ID, ns, ws.ID)
		if err != nil || got != want {
			t.Fatalf("AkashLeaseBound(%s) = %v, %v; want %v", ws.Name, got, err, want)
		}
	}
	check(a, false)
	if _, err := s.PutAkashLease(ctx, f.cluster.ID, ns, l); err != nil {
		t.Fatal(err)
	}
	check(a, true)
	check(b, false)
	if err := s.DeleteAkashLease(ctx, f.cluster.ID, ns); err != nil {
		t.Fatal(err)
	}
	check(a, false)
}
