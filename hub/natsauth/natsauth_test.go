package natsauth

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

type env struct {
	t     *testing.T
	url   string
	store *store.SQL
	hub   *nats.Conn
	creds Credentials
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	creds.Configure(opts)
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	hub, err := nats.Connect(ns.ClientURL(), nats.UserInfo(HubUser, creds.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	if _, err := New(st, creds.Issuer).Subscribe(hub); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: ns.ClientURL(), store: st, hub: hub, creds: creds}
}

// cluster creates a cluster and returns it with its join token.
func (e *env) cluster(name string) (store.Cluster, string) {
	c, err := e.store.CreateCluster(context.Background(), store.Cluster{Name: name}, []byte("placeholder"))
	if err != nil {
		e.t.Fatal(err)
	}
	tok, hash := NewJoinToken(c.ID)
	if err := e.store.RotateJoinToken(context.Background(), name, hash); err != nil {
		e.t.Fatal(err)
	}
	return c, tok
}

func (e *env) node(c store.Cluster, name string) (store.Node, string) {
	secret, hash := NewSecret(wire.NodeSecretPrefix)
	n, err := e.store.CreateNode(context.Background(), c.ID, name, hash)
	if err != nil {
		e.t.Fatal(err)
	}
	return n, secret
}

// client connects and collects the server's asynchronous errors
// (permission violations).
type client struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
}

func (e *env) connect(user, pass, inbox string) (*client, error) {
	c := &client{}
	nc, err := nats.Connect(e.url, nats.UserInfo(user, pass), nats.CustomInboxPrefix(inbox), nats.MaxReconnects(0),
		nats.Timeout(15*time.Second), // the auth callout runs per connect: a loaded machine can pass the 2 s default
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err.Error())
			c.mu.Unlock()
		}))
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(nc.Close)
	c.nc = nc
	return c, nil
}

func (c *client) violations() string {
	c.nc.Flush()
	time.Sleep(50 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.errs, "; ")
}

func TestNodeIsConfinedByTheServer(t *testing.T) {
	e := newEnv(t)
	a, _ := e.cluster("a")
	b, _ := e.cluster("b")
	a1, s1 := e.node(a, "a1")
	a2, s2 := e.node(a, "a2")
	b1, _ := e.node(b, "b1")

	n1, err := e.connect(a1.ID, s1, wire.InboxPrefix(a1.ID))
	if err != nil {
		t.Fatalf("node a1 connect: %v", err)
	}
	n2, err := e.connect(a2.ID, s2, wire.InboxPrefix(a2.ID))
	if err != nil {
		t.Fatalf("node a2 connect: %v", err)
	}

	// The hub answers token requests; a2's reply must not reach a1.
	got := make(chan string, 10)
	e.hub.Subscribe(wire.TokenSubjectAll, func(m *nats.Msg) {
		got <- m.Subject
		m.Respond([]byte("secret reply for " + m.Subject))
	})
	e.hub.Subscribe(wire.SyncSubjectAll, func(m *nats.Msg) { m.Respond([]byte("{}")) })
	e.hub.Flush()

	// Forbidden subscriptions: other clusters' revocations, other nodes'
	// inboxes, wildcards over the control plane, the system account.
	for _, subj := range []string{wire.RevokeSubject(b.ID), wire.InboxPrefix(a2.ID) + ".>", "_INBOX.>", "pullgate.>", ">", wire.TokenSubjectAll, "$SYS.>"} {
		sub, err := n1.nc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		if v := n1.violations(); !strings.Contains(strings.ToLower(v), "permissions violation") || !strings.Contains(v, subj) {
			t.Fatalf("subscribe %s: no permissions violation (%q)", subj, v)
		}
		sub.Unsubscribe()
	}
	// Allowed: its own cluster's revocations.
	rev, err := n1.nc.SubscribeSync(wire.RevokeSubject(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	n1.nc.Flush()
	e.hub.Publish(wire.RevokeSubject(a.ID), []byte("r"))
	if _, err := rev.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("own revocation subject: %v", err)
	}

	// Forbidden publishes: another node's or cluster's token subject, enrol,
	// revocations.
	before := len(got)
	for _, subj := range []string{wire.TokenSubject(a.ID, a2.ID), wire.TokenSubject(b.ID, b1.ID), wire.EnrolSubject(a.ID), wire.RevokeSubject(a.ID)} {
		n1.nc.Publish(subj, []byte("x"))
		if v := n1.violations(); !strings.Contains(v, subj) {
			t.Fatalf("publish %s: no permissions violation (%q)", subj, v)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if len(got) != before {
		t.Fatal("a forbidden publish reached the hub")
	}

	// Its own token request works, and the reply comes back to it only.
	spy, _ := n1.nc.SubscribeSync(wire.InboxPrefix(a1.ID) + ".>")
	n1.nc.Flush()
	reply, err := n2.nc.Request(wire.TokenSubject(a.ID, a2.ID), []byte("{}"), 2*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), a2.ID) {
		t.Fatalf("a2 request: %v %v", reply, err)
	}
	if m, err := spy.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("a1 received a reply meant for a2: %s", m.Data)
	}
	if _, err := n1.nc.Request(wire.SyncSubject(a.ID, a1.ID), []byte("{}"), 2*time.Second); err != nil {
		t.Fatalf("a1 sync request: %v", err)
	}
}

func TestConnectionsRefused(t *testing.T) {
	e := newEnv(t)
	a, join := e.cluster("a")
	a1, s1 := e.node(a, "a1")
	a2, s2 := e.node(a, "a2")
	if _, err := e.store.RevokeNode(context.Background(), "a", a2.ID); err != nil {
		t.Fatal(err)
	}
	enrolID := strings.Repeat("ab", 16)
	tests := []struct {
		name, user, pass string
	}{
		{"wrong node secret", a1.ID, wire.NodeSecretPrefix + "nope"},
		{"secret of another node", a1.ID, s2},
		{"revoked node", a2.ID, s2},
		{"unknown node", "node_ffff", s1},
		{"no credentials", "", ""},
		{"hub user with wrong password", HubUser, "nope"},
		{"enrol with bad join token", "enrol-" + enrolID, wire.JoinTokenPrefix + a.ID + ".wrongwrongwrongwrongwrong"},
		{"enrol with wildcard id", "enrol->", join},
		{"enrol with node secret", "enrol-" + enrolID, s1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := e.connect(tc.user, tc.pass, "_INBOX_x"); err == nil {
				c.nc.Close()
				t.Fatal("connected")
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("err = %v, want an authorization violation", err)
			}
		})
	}

	// A valid join token connects, but may only enrol.
	c, err := e.connect("enrol-"+enrolID, join, wire.EnrolInboxPrefix(enrolID))
	if err != nil {
		t.Fatalf("enrol connect: %v", err)
	}
	e.hub.Subscribe(wire.EnrolSubjectAll, func(m *nats.Msg) { m.Respond([]byte("enrolled")) })
	e.hub.Flush()
	if r, err := c.nc.Request(wire.EnrolSubject(a.ID), []byte("{}"), 2*time.Second); err != nil || string(r.Data) != "enrolled" {
		t.Fatalf("enrol request: %v %v", r, err)
	}
	c.nc.Publish(wire.TokenSubject(a.ID, a1.ID), nil)
	if v := c.violations(); !strings.Contains(v, "Permissions Violation") {
		t.Fatalf("enrol connection published a token request: %q", v)
	}

	// After rotation the old join token no longer connects.
	_, hash := NewJoinToken(a.ID)
	e.store.RotateJoinToken(context.Background(), "a", hash)
	if _, err := e.connect("enrol-"+enrolID, join, wire.EnrolInboxPrefix(enrolID)); err == nil {
		t.Fatal("rotated join token still connects")
	}
}

func TestSecrets(t *testing.T) {
	s, h := NewSecret(wire.NodeSecretPrefix)
	if !SecretMatches(s, wire.NodeSecretPrefix, h) || SecretMatches(s+"x", wire.NodeSecretPrefix, h) || SecretMatches(strings.TrimPrefix(s, wire.NodeSecretPrefix), wire.NodeSecretPrefix, h) {
		t.Fatal("SecretMatches")
	}
	tok, _ := NewJoinToken("cl_123")
	if c, _, err := wire.ParseJoinToken(tok); err != nil || c != "cl_123" {
		t.Fatalf("ParseJoinToken(%q) = %q, %v", tok, c, err)
	}
}
