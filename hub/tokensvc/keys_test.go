package tokensvc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Review finding 4: a node enrolled with a shared cluster's join token
// offers its own key set on sync and forges a service-account token for
// another tenant's namespace. Before the fix the first offer was pinned and
// the forged token got the victim's install token.
func TestOfferedKeysNeverTrusted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	real := testsa.New(t)
	e.workspace("victim-a", "ghcr.io")
	e.cluster("shared-1", "", nil) // created without --sa-jwks
	victim := e.install("victim-a", "a-app", "shared-1", "ns-a", "")

	nc, node := e.enrol("shared-1", "", nil)
	forger := testsa.New(t)
	var sync wire.SyncReply
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{JWKS: forger.JWKS(), Issuer: "https://evil.example"}, &sync)
	if sync.Error != "" {
		t.Fatalf("sync: %+v", sync)
	}
	forged := forger.Token(t, "ns-a", "default", testsa.Opts{Issuer: "https://evil.example"})
	rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: forged})
	if rep.Token != "" || rep.Code != wire.CodeForbidden || !strings.Contains(rep.Error, "no approved service-account keys") ||
		!strings.Contains(rep.Error, "cluster jwks") {
		t.Fatalf("forged token on a cluster without approved keys: %+v", rep)
	}
	c, _ := e.store.GetCluster(ctx, "shared-1")
	if len(c.SAJWKS) != 0 || c.SAIssuer != "" {
		t.Fatalf("offered keys were trusted: %s %q", c.SAJWKS, c.SAIssuer)
	}
	if !sameJSON(c.Proposal.JWKS, forger.JWKS()) || c.Proposal.NodeID != node.NodeID || c.Proposal.Issuer != "https://evil.example" {
		t.Fatalf("proposal %+v", c.Proposal)
	}

	// The operator sets the cluster's real keys; the attacker keeps
	// offering its own: the proposal changes, the approved keys do not.
	if _, err := e.store.SetClusterJWKS(ctx, "shared-1", real.JWKS(), testsa.DefaultIssuer); err != nil {
		t.Fatal(err)
	}
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{JWKS: forger.JWKS()}, &sync)
	c, _ = e.store.GetCluster(ctx, "shared-1")
	if !sameJSON(c.SAJWKS, real.JWKS()) || c.SAIssuer != testsa.DefaultIssuer || !sameJSON(c.Proposal.JWKS, forger.JWKS()) {
		t.Fatalf("after set and another offer: approved %s %q, proposed %s", c.SAJWKS, c.SAIssuer, c.Proposal.JWKS)
	}
	for _, tok := range []string{forged, forger.Token(t, "ns-a", "default", testsa.Opts{})} {
		if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: tok}); rep.Token != "" || rep.Code != wire.CodeForbidden {
			t.Fatalf("forged token after set: %+v", rep)
		}
	}
	if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: real.Token(t, "ns-a", "default", testsa.Opts{})}); rep.InstallID != victim.ID {
		t.Fatalf("genuine token: %+v", rep)
	}
	// Offering the approved keys again leaves the pending proposal alone.
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{JWKS: real.JWKS()}, &sync)
	if c, _ := e.store.GetCluster(ctx, "shared-1"); !sameJSON(c.Proposal.JWKS, forger.JWKS()) {
		t.Fatal("offering the approved keys replaced the proposal")
	}
	// A symmetric "key set" is refused outright.
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}, &sync)
	if sync.Code != wire.CodeInvalid {
		t.Fatalf("symmetric JWKS: %+v", sync)
	}
}

// mergeJWKS joins key sets (a rotation publishes old and new keys).
func mergeJWKS(t *testing.T, sets ...[]byte) []byte {
	var out struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, s := range sets {
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(s, &doc); err != nil {
			t.Fatal(err)
		}
		out.Keys = append(out.Keys, doc.Keys...)
	}
	b, _ := json.Marshal(out)
	return b
}

// Keys can be rotated without re-creating the cluster, several at once;
// the issuer is pinned with them.
func TestKeyRotationAndIssuer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := testsa.New(t), testsa.New(t)
	e.workspace("tenant-a", "ghcr.io")
	e.cluster("shared", "", nil)
	in := e.install("tenant-a", "app", "shared", "ns-a", "")
	nc, node := e.enrol("shared", "", nil)
	try := func(iss *testsa.Issuer, o testsa.Opts) wire.TokenReply {
		return e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: iss.Token(t, "ns-a", "default", o)})
	}
	set := func(jwks []byte, issuer string) {
		t.Helper()
		if _, err := e.store.SetClusterJWKS(ctx, "shared", jwks, issuer); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name         string
		jwks         []byte
		issuer       string
		aOK, bOK     bool
		wrongIssuerA bool
	}{
		{"A", a.JWKS(), testsa.DefaultIssuer, true, false, false},
		{"A+B", mergeJWKS(t, a.JWKS(), b.JWKS()), testsa.DefaultIssuer, true, true, false},
		{"B only", b.JWKS(), testsa.DefaultIssuer, false, true, false},
	} {
		set(step.jwks, step.issuer)
		if rep := try(a, testsa.Opts{}); (rep.InstallID == in.ID) != step.aOK {
			t.Fatalf("%s: token of key A: %+v", step.name, rep)
		}
		if rep := try(b, testsa.Opts{}); (rep.InstallID == in.ID) != step.bOK {
			t.Fatalf("%s: token of key B: %+v", step.name, rep)
		}
	}
	// A valid signature by an approved key with another issuer: refused.
	if rep := try(b, testsa.Opts{Issuer: "https://other.example"}); rep.Token != "" || rep.Code != wire.CodeForbidden || !strings.Contains(rep.Error, "iss") {
		t.Fatalf("wrong issuer: %+v", rep)
	}
}

// Review finding 5: a new cluster of a deleted cluster's name inherits
// nothing, for shared and single-workspace clusters, and its sync lists no
// other workspace's install or host.
func TestRecreatedClusterInheritsNothing(t *testing.T) {
	ctx := context.Background()
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%t", shared), func(t *testing.T) {
			e := newEnv(t)
			victim := e.workspace("victim-a", "registry.victim.example")
			evil := e.workspace("tenant-evil", "registry.evil.example")
			iss := testsa.New(t)
			owner := victim.ID
			if shared {
				owner = ""
			}
			e.cluster("prov-x", owner, iss.JWKS())
			e.install("victim-a", "a-on-provx", "prov-x", "ns-a", "", "registry.victim.example/app/*")

			if _, err := e.store.DeleteCluster(ctx, "prov-x", false); err == nil || !strings.Contains(err.Error(), "victim-a/a-on-provx") {
				t.Fatalf("delete with an install bound: %v", err)
			}
			if _, err := e.store.DeleteCluster(ctx, "prov-x", true); err != nil {
				t.Fatal(err)
			}
			newOwner := evil.ID
			if shared {
				newOwner = ""
			}
			nc, node := e.enrol("prov-x", newOwner, iss.JWKS())
			var sync wire.SyncReply
			e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{}, &sync)
			if sync.Error != "" || len(sync.Installs) != 0 || len(sync.Hosts) != 0 {
				t.Fatalf("sync of the new cluster lists: %+v", sync)
			}
			rep := e.token(nc, node, wire.TokenRequest{Image: "registry.victim.example/app/x:1", ServiceAccountToken: iss.Token(t, "ns-a", "default", testsa.Opts{})})
			if rep.Token != "" || rep.Code != wire.CodeNotFound {
				t.Fatalf("new cluster got the victim's install: %+v", rep)
			}
		})
	}
}

// On a shared cluster an ambiguity refusal names no install (they may be
// other tenants'); a second workspace cannot take a namespace in use.
func TestSharedClusterAmbiguityDisclosesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	iss := testsa.New(t)
	e.workspace("tenant-a", "ghcr.io")
	e.workspace("tenant-b", "ghcr.io")
	e.cluster("shared", "", iss.JWKS())
	e.install("tenant-a", "secret-name-1", "shared", "ns-a", "")
	e.install("tenant-a", "secret-name-2", "shared", "ns-a", "")
	if _, err := e.store.CreateInstall(ctx, "tenant-b", store.Install{Name: "squat", Cluster: "shared", Namespace: "ns-a", Enabled: true}); err == nil {
		t.Fatal("a second workspace took namespace ns-a of the shared cluster")
	}
	nc, node := e.enrol("shared", "", nil)
	rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/org/app:1", ServiceAccountToken: iss.Token(t, "ns-a", "default", testsa.Opts{})})
	if rep.Code != wire.CodeAmbiguous || strings.Contains(rep.Error, "secret-name") || strings.Contains(rep.Error, "tenant-") {
		t.Fatalf("ambiguity refusal: %+v", rep)
	}
}

// A one-time join token enrols exactly one node, even when two agents race
// with it; afterwards it no longer even connects.
func TestOneTimeJoinToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.cluster("edge", "", nil)
	join, hash := natsauth.NewJoinToken(c.ID)
	if err := e.store.RotateJoinTokenLimited(ctx, "edge", hash, store.JoinLimit{Uses: 1}); err != nil {
		t.Fatal(err)
	}
	const n = 4
	conns := make([]*nats.Conn, n)
	for i := range n {
		enrolID := strings.Repeat(fmt.Sprintf("%02x", i+1), 16)
		nc, err := nats.Connect(e.url, nats.UserInfo(wire.EnrolUser(enrolID), join), nats.CustomInboxPrefix(wire.EnrolInboxPrefix(enrolID)))
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	reps := make([]wire.EnrolReply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(wire.EnrolRequest{NodeName: "racer"})
			m, err := conns[i].Request(wire.EnrolSubject(c.ID), b, 5*time.Second)
			if err == nil {
				json.Unmarshal(m.Data, &reps[i])
			} else {
				reps[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range reps {
		switch {
		case r.NodeID != "":
			ok++
		case r.Code != wire.CodeForbidden || !strings.Contains(r.Error, "used up or expired"):
			t.Fatalf("refused enrolment: %+v", r)
		}
	}
	if nodes, _ := e.store.ListNodes(ctx, "edge"); ok != 1 || len(nodes) != 1 {
		t.Fatalf("%d enrolments succeeded, %d nodes; want 1", ok, len(nodes))
	}
	enrolID := strings.Repeat("ab", 16)
	if nc, err := nats.Connect(e.url, nats.UserInfo(wire.EnrolUser(enrolID), join), nats.CustomInboxPrefix(wire.EnrolInboxPrefix(enrolID))); err == nil {
		nc.Close()
		t.Fatal("a spent one-time join token still connects")
	}
}
