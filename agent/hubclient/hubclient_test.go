package hubclient

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/pkg/wire"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		base     time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 30 * time.Second}, {1000, 30 * time.Second}} {
		for i := 0; i < 20; i++ {
			d := Backoff(tc.attempts, time.Second, 30*time.Second)
			if d < tc.base || d > tc.base+tc.base/5 {
				t.Fatalf("Backoff(%d) = %s, want %s..+20%%", tc.attempts, d, tc.base)
			}
		}
	}
}

func TestEnrol(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", true)
	ctx := context.Background()

	if _, err := Enrol(ctx, hub.URL(), "not-a-token", wire.EnrolRequest{}); err == nil || strings.Contains(err.Error(), "not-a-token") {
		t.Fatalf("malformed token: %v", err)
	}
	wrong := wire.JoinTokenPrefix + cl.ID + ".0123456789abcdef0123"
	_, err := Enrol(ctx, hub.URL(), wrong, wire.EnrolRequest{})
	if !errors.Is(err, ErrJoinRefused) || strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := Enrol(ctx, "nats://127.0.0.1:1", cl.JoinToken, wire.EnrolRequest{}, WithTimeout(500*time.Millisecond)); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("no server: %v", err)
	}
	r, err := Enrol(ctx, hub.URL(), cl.JoinToken, wire.EnrolRequest{NodeName: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ClusterID != cl.ID || !r.Shared || !strings.HasPrefix(r.NodeSecret, wire.NodeSecretPrefix) || r.NodeID == "" {
		t.Fatalf("reply %+v", r.ClusterID)
	}
	// Rotation: the old token stops working.
	hub.RotateJoinToken(cl.ID)
	if _, err := Enrol(ctx, hub.URL(), cl.JoinToken, wire.EnrolRequest{}); !errors.Is(err, ErrJoinRefused) {
		t.Fatalf("rotated token: %v", err)
	}
}

func enrolled(t *testing.T, hub *hubfake.Hub, cl hubfake.Cluster) identity.Identity {
	r, err := Enrol(context.Background(), hub.URL(), cl.JoinToken, wire.EnrolRequest{NodeName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.FromEnrolReply(r, "n", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConnTokenSyncAndErrors(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	in := hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: cl.ID, Repos: []string{"ghcr.io/org"}})
	id := enrolled(t, hub, cl)
	connected := make(chan struct{}, 1)
	revs := make(chan wire.Revocation, 1)
	c, err := Dial(hub.URL(), id, Events{
		Connected:  func() { connected <- struct{}{} },
		Revocation: func(r wire.Revocation) { revs <- r },
	}, WithTimeout(300*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("not connected")
	}
	ctx := context.Background()
	tr, err := c.Token(ctx, wire.TokenRequest{Image: "ghcr.io/org/app"})
	if err != nil || tr.InstallID != in.ID || tr.Token == "" {
		t.Fatalf("token: %+v %v", tr.InstallID, err)
	}
	_, err = c.Token(ctx, wire.TokenRequest{Image: "quay.io/x/y"})
	var re *ReplyError
	if !errors.As(err, &re) || re.Code != wire.CodeNotFound || re.Op != "token" {
		t.Fatalf("not found: %v", err)
	}
	sr, err := c.Sync(ctx, wire.SyncRequest{})
	if err != nil || sr.Installs[in.ID].Generation != 1 {
		t.Fatalf("sync: %+v %v", sr, err)
	}
	hub.DeleteInstall(in.ID, true)
	select {
	case r := <-revs:
		if len(r.Installs) != 1 || r.Installs[0] != in.ID {
			t.Fatalf("revocation %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no revocation")
	}
	hub.Pause(true)
	if _, err := c.Token(ctx, wire.TokenRequest{Image: "ghcr.io/org/app"}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("hub not answering: %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	id := enrolled(t, hub, cl)
	hub.RevokeNode(id.NodeID, false)
	var refused atomic.Int32
	failures := hub.AuthFailures.Load()
	c, err := Dial(hub.URL(), id, Events{Refused: func(error) { refused.Add(1) }},
		WithReconnectWait(10*time.Millisecond, 50*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for (refused.Load() < 1 || hub.AuthFailures.Load()-failures < 3) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if refused.Load() < 1 || hub.AuthFailures.Load()-failures < 3 {
		t.Fatalf("refusal reported %d times, %d refused attempts; want a report and continued attempts with the same identity",
			refused.Load(), hub.AuthFailures.Load()-failures)
	}
	if c.Connected() {
		t.Fatal("revoked node connected")
	}
}

// A request that lands on a hub replica that does not answer (hung, still
// in the queue group) is sent again within the timeout, and the answer of
// another replica is taken.
func TestTokenRetriedAfterUnansweredAttempt(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: cl.ID, Repos: []string{"ghcr.io/org"}})
	id := enrolled(t, hub, cl)
	connected := make(chan struct{}, 1)
	c, err := Dial(hub.URL(), id, Events{Connected: func() { connected <- struct{}{} }},
		WithTimeout(3*time.Second), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("not connected")
	}
	hub.Pause(true)
	before := hub.TokenRequests.Load()
	type result struct {
		tr  wire.TokenReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		tr, err := c.Token(context.Background(), wire.TokenRequest{Image: "ghcr.io/org/app"})
		done <- result{tr, err}
	}()
	// The first attempt reached the hub, which dropped it; from now on it
	// answers (another replica, as far as the agent can tell).
	deadline := time.Now().Add(2 * time.Second)
	for hub.TokenRequests.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("no token request reached the hub")
		}
		time.Sleep(time.Millisecond)
	}
	hub.Pause(false)
	r := <-done
	if r.err != nil || r.tr.Token == "" {
		t.Fatalf("token after an unanswered attempt: %v", r.err)
	}
	if n := hub.TokenRequests.Load() - before; n != 2 {
		t.Fatalf("%d requests, want 2 (one dropped, one answered)", n)
	}
}
