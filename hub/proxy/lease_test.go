package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/akash"
)

// A token minted for an Akash lease namespace works while the lease is
// there and is refused (lease_ended, audited) the moment it is gone, long
// before the token expires.
func TestLeaseTokenEndsWithLease(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "lease-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	ctx := context.Background()
	f := newFixture(t)
	key := func(seed byte) string {
		k := make([]byte, 33)
		k[0], k[1] = 2, seed
		a, _ := akash.AddressOf(k)
		return a
	}
	provider, owner := key(1), key(2)
	acct, _, err := f.store.EnsureAkashAccount(ctx, owner, "acme")
	f.mustErr(err)
	ws, err := f.store.GetWorkspace(ctx, acct.Workspace)
	f.mustErr(err)
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	in, err := f.store.CreateInstall(ctx, ws.Name, store.Install{Name: "web", Akash: "all", Enabled: true})
	f.mustErr(err)
	c, err := f.store.CreateCluster(ctx, store.Cluster{Name: "provider", AkashProvider: provider, AkashController: "pullgate:akash"}, []byte("h"))
	f.mustErr(err)
	n, err := f.store.CreateNode(ctx, c.ID, "n1", []byte("h"))
	f.mustErr(err)
	lease := akash.LeaseID{Owner: owner, DSeq: 5, GSeq: 1, OSeq: 1, Provider: provider}
	ns := lease.Namespace()
	_, err = f.store.PutAkashLease(ctx, c.ID, ns, lease)
	f.mustErr(err)
	mint := func(lease string) string {
		tok, _, err := f.keys.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Cluster: c.ID, Node: n.ID, Generation: in.Generation, Lease: lease}, 10*time.Minute)
		f.mustErr(err)
		return tok
	}
	tok := mint(ns)
	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"
	if resp := f.get(http.MethodGet, manifest, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("pull while the lease is there: %d %s", resp.StatusCode, readBody(t, resp))
	} else {
		readBody(t, resp)
	}
	// A lease namespace the workspace's account does not hold.
	other := akash.LeaseID{Owner: key(3), DSeq: 5, GSeq: 1, OSeq: 1, Provider: provider}
	if resp := f.get(http.MethodGet, manifest, mint(other.Namespace())); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token for a lease not the workspace's: %d %s", resp.StatusCode, readBody(t, resp))
	} else {
		readBody(t, resp)
	}

	f.mustErr(f.store.DeleteAkashLease(ctx, c.ID, ns))
	resp := f.get(http.MethodGet, manifest, tok)
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pull after the lease ended: %d %s", resp.StatusCode, body)
	}
	evs := f.audit.all()
	last := evs[len(evs)-1]
	if last.Reason != "lease_ended" || last.Install != "web" || last.Status != http.StatusUnauthorized {
		t.Fatalf("audit event %+v, want lease_ended for web", last)
	}
	// The token endpoint refuses it too.
	if resp := f.get(http.MethodGet, "/auth/token?service=pullgate", tok); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token endpoint after the lease ended: %d", resp.StatusCode)
	} else {
		readBody(t, resp)
	}
}
