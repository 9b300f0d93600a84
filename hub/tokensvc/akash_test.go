package tokensvc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/pkg/akash"
	"github.com/pullgate/pullgate/pkg/wire"
)

func testAddress(t *testing.T, seed byte) string {
	t.Helper()
	key := make([]byte, 33)
	key[0], key[1] = 2, seed
	a, err := akash.AddressOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// An Akash install is served in its account's lease namespaces: the token
// carries the lease, sync lists it, and a change of the install (which has
// no cluster of its own) is pushed to the clusters where it has leases.
func TestAkashLeaseInstalls(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	iss := testsa.New(t)
	provider, owner := testAddress(t, 1), testAddress(t, 2)
	acct, _, err := e.store.EnsureAkashAccount(ctx, owner, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateCredential(ctx, "tenant-a", store.Credential{Name: "gh", Host: "ghcr.io", Kind: "basic", Username: "u", Enabled: true}, store.Sealed("x")); err != nil {
		t.Fatal(err)
	}
	c, err := e.store.CreateCluster(ctx, store.Cluster{Name: "provider", SAJWKS: iss.JWKS(), AkashProvider: provider, AkashController: "pullgate:akash"}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.store.CreateInstall(ctx, "tenant-a", store.Install{Name: "web", Akash: "all", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	lease := akash.LeaseID{Owner: owner, DSeq: 7, GSeq: 1, OSeq: 1, Provider: provider}
	ns := lease.Namespace()
	if _, err := e.store.PutAkashLease(ctx, c.ID, ns, lease); err != nil {
		t.Fatal(err)
	}
	nc, node := e.enrol("provider", "", iss.JWKS())
	rev, err := nc.SubscribeSync(wire.RevokeSubject(node.ClusterID))
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: iss.Token(t, ns, "default", testsa.Opts{})})
	if rep.Error != "" || rep.InstallID != in.ID || rep.Workspace != acct.WorkspaceID {
		t.Fatalf("token in the lease namespace: %+v", rep)
	}
	claims, err := e.keys.Verify(rep.Token)
	if err != nil || claims.Lease != ns || claims.Cluster != c.ID {
		t.Fatalf("claims %+v, %v; want lease %s", claims, err, ns)
	}
	if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: iss.Token(t, "other", "default", testsa.Opts{})}); rep.Token != "" || !strings.Contains(rep.Error, "no enabled install") {
		t.Fatalf("token outside the lease namespace: %+v", rep)
	}
	var sync wire.SyncReply
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{}, &sync)
	if _, ok := sync.Installs[in.ID]; !ok || len(sync.Hosts) != 1 || sync.Hosts[0] != "ghcr.io" {
		t.Fatalf("sync: %+v", sync)
	}

	off := false
	in, err = e.store.UpdateInstall(ctx, "tenant-a", "web", store.InstallUpdate{Enabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.InstallChanged(ctx, in); err != nil {
		t.Fatal(err)
	}
	m, err := rev.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal("no revocation pushed to the lease's cluster for an Akash install")
	}
	var r wire.Revocation
	json.Unmarshal(m.Data, &r)
	if len(r.Installs) != 1 || r.Installs[0] != in.ID {
		t.Fatalf("revocation %+v", r)
	}
	// A lease change nudges the cluster with a notice naming nothing.
	if err := e.svc.AkashLeasesChanged(ctx, c); err != nil {
		t.Fatal(err)
	}
	if m, err = rev.NextMsg(2 * time.Second); err != nil {
		t.Fatal("no notice after a lease change")
	}
	var notice wire.Revocation
	json.Unmarshal(m.Data, &notice)
	if len(notice.Installs)+len(notice.Workspaces)+len(notice.Nodes) != 0 || notice.Cluster {
		t.Fatalf("notice %+v", notice)
	}
}

// VerifyServiceAccount accepts a pod-bound token of the cluster's approved
// issuer only.
func TestVerifyServiceAccount(t *testing.T) {
	e := newEnv(t)
	iss, other := testsa.New(t), testsa.New(t)
	c := e.cluster("shared", "", iss.JWKS())
	if cl, err := e.svc.VerifyServiceAccount(c, iss.Token(t, "pullgate", "akash", testsa.Opts{})); err != nil || cl.Namespace != "pullgate" || cl.ServiceAccount != "akash" {
		t.Fatalf("VerifyServiceAccount = %+v, %v", cl, err)
	}
	for name, tok := range map[string]string{
		"other issuer":   other.Token(t, "pullgate", "akash", testsa.Opts{}),
		"wrong audience": iss.Token(t, "pullgate", "akash", testsa.Opts{Audience: "vault"}),
		"expired":        iss.Token(t, "pullgate", "akash", testsa.Opts{TTL: -time.Hour}),
		"not a token":    "x",
		"not pod-bound":  iss.Token(t, "pullgate", "akash", testsa.Opts{Unbound: true}),
	} {
		if _, err := e.svc.VerifyServiceAccount(c, tok); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	if _, err := e.svc.VerifyServiceAccount(e.cluster("nokeys", "", nil), iss.Token(t, "pullgate", "akash", testsa.Opts{})); err == nil {
		t.Fatal("a cluster without approved keys accepted a token")
	}
}
