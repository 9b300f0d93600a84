package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// streamBlobSize is far more than loopback socket buffers hold, so a
// stream cannot complete into the kernel before the proxy notices.
const streamBlobSize = 32 << 20

// A revoke reaches a blob stream already in flight: the proxy re-checks
// live state while copying and cuts the stream, and the client sees a
// broken response, not a clean end of a short blob.
func TestRevokeCutsStreamInFlight(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "stream-SECRET"))
	_, digest := up.PushBlobImage(t, "org/big", "v1", streamBlobSize)
	blob := "/v2/" + upstreamHost + "/org/big/blobs/" + digest.String()
	ctx := context.Background()
	off := false
	for _, tc := range []struct {
		name, reason string
		revoke       func(f *fixture, ws store.Workspace)
	}{
		{"install disabled", "install_disabled", func(f *fixture, ws store.Workspace) {
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &off}))
		}},
		{"install deleted", "install_deleted", func(f *fixture, ws store.Workspace) {
			f.mustErr(f.store.DeleteInstall(ctx, ws.Name, "web"))
		}},
		{"credential disabled", "credential_disabled", func(f *fixture, ws store.Workspace) {
			f.must(f.store.UpdateCredential(ctx, ws.Name, "reg", store.CredentialUpdate{Enabled: &off}))
		}},
		{"node revoked", "node_revoked", func(f *fixture, _ store.Workspace) {
			f.must(f.store.RevokeNode(ctx, "edge", "n1"))
		}},
	} {
		for _, trig := range []struct {
			name     string
			interval time.Duration
			bytes    int64
		}{
			// Either bound alone triggers the check; the other is out of
			// reach (the test must not depend on timing).
			{"every MiB", time.Hour, 1 << 20},
			{"every interval", time.Nanosecond, 1 << 40},
		} {
			t.Run(tc.name+"/"+trig.name, func(t *testing.T) {
				testRevokeCutsStream(t, up, blob, tc.reason, trig.interval, trig.bytes, tc.revoke)
			})
		}
	}
}

func testRevokeCutsStream(t *testing.T, up *testupstream.Registry, blob, reason string, interval time.Duration, n int64, revoke func(*fixture, store.Workspace)) {
	f := newFixture(t, WithStreamChecks(interval, n, 0))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	in := f.install(ws, "web")
	// A token as a node agent gets it, so that revoking the node applies.
	ctx := context.Background()
	c, err := f.store.CreateCluster(ctx, store.Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := f.store.CreateNode(ctx, c.ID, "n1", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.keys.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Cluster: c.ID, Node: node.ID, Generation: in.Generation}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	resp := f.get(http.MethodGet, blob, tok)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != streamBlobSize {
		t.Fatalf("GET blob: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	revoke(f, ws)
	rest, err := io.Copy(io.Discard, resp.Body)
	got := int64(len(head)) + rest
	if err == nil || got >= streamBlobSize {
		t.Fatalf("after the revoke the client got %d of %d bytes, err %v: want a cut stream and an error", got, streamBlobSize, err)
	}
	t.Logf("stream cut after %d of %d bytes: %v", got, streamBlobSize, err)
	ev := waitAudit(t, f, func(e store.AuditEvent) bool { return e.Kind == "blob" })
	if ev.Reason != "stream_cut:"+reason || ev.Bytes >= streamBlobSize {
		t.Fatalf("audit event %+v, want reason stream_cut:%s", ev, reason)
	}
}

// A client that stops reading is dropped after the write timeout instead
// of holding the stream (an upstream connection and a buffer) for ever.
func TestStalledReaderDropped(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "stall-SECRET"))
	_, digest := up.PushBlobImage(t, "org/big", "v1", streamBlobSize)
	f := newFixture(t, WithStreamChecks(0, 0, 300*time.Millisecond))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)

	resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/big/blobs/"+digest.String(), tok)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %d", resp.StatusCode)
	}
	// Read nothing: the proxy's handler must give up on its own (the
	// bound here is generous; the timeout is 300ms).
	ev := waitAudit(t, f, func(e store.AuditEvent) bool { return e.Kind == "blob" })
	if ev.Bytes >= streamBlobSize {
		t.Fatalf("audit says %d bytes sent to a client that read nothing", ev.Bytes)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= streamBlobSize {
		t.Fatalf("stalled client then read %d of %d bytes, err %v: want a dropped connection", n, streamBlobSize, err)
	}
}

// waitAudit waits (up to 60 s) for the first audit event matching ok.
func waitAudit(t *testing.T, f *fixture, ok func(store.AuditEvent) bool) store.AuditEvent {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range f.audit.all() {
			if ok(e) {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no matching audit event within 60s")
	return store.AuditEvent{}
}

// Expiry is not a revoke: a layer that takes longer than its token's
// lifetime completes (the re-checks see live state, not the clock).
func TestExpiryDoesNotCutStream(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "expiry-SECRET"))
	_, digest := up.PushBlobImage(t, "org/big", "v1", streamBlobSize)
	f := newFixture(t, WithStreamChecks(time.Hour, 1<<20, 0))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/big/blobs/"+digest.String(), tok)
	defer resp.Body.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	f.clock.Store(time.Now().Add(time.Hour).UnixNano())
	rest, err := io.Copy(io.Discard, resp.Body)
	if got := int64(len(head)) + rest; err != nil || got != streamBlobSize {
		t.Fatalf("stream outliving its token: %d of %d bytes, %v", got, streamBlobSize, err)
	}
	// The next request with that token is refused.
	if resp := f.get(http.MethodHead, "/v2/"+upstreamHost+"/org/big/blobs/"+digest.String(), tok); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("next request with the expired token: %d", resp.StatusCode)
	}
}

// The store goes away during a stream: a short outage is not a revoke,
// but the stream does not outlive unconfirmed live state for long either.
// Once it could not be confirmed for two check intervals it is cut (the
// client resumes with Range when the store is back).
func TestStoreOutageCutsStreamAfterGrace(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "outage-SECRET"))
	_, digest := up.PushBlobImage(t, "org/big", "v1", streamBlobSize)
	const interval = 50 * time.Millisecond
	f := newFixture(t, WithStreamChecks(interval, 1<<40, 0))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)

	resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/big/blobs/"+digest.String(), tok)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %d", resp.StatusCode)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	f.store.Close() // every live-state read fails from now on
	// Read slowly: 32 MiB take seconds, the grace is 2 intervals.
	got := int64(len(head))
	buf := make([]byte, 64<<10)
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 20*time.Second {
		var n int
		n, err = resp.Body.Read(buf)
		got += int64(n)
		time.Sleep(5 * time.Millisecond)
	}
	if err == io.EOF || got >= streamBlobSize {
		t.Fatalf("the stream went on without live state: %d of %d bytes, err %v", got, streamBlobSize, err)
	}
	t.Logf("stream cut %v into the outage after %d of %d bytes: %v", time.Since(start).Round(time.Millisecond), got, streamBlobSize, err)
	ev := waitAudit(t, f, func(e store.AuditEvent) bool { return e.Kind == "blob" })
	if ev.Reason != "stream_cut:state_unavailable" {
		t.Fatalf("audit event %+v, want reason stream_cut:state_unavailable", ev)
	}
}
