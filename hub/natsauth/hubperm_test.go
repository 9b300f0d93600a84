package natsauth

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/pkg/wire"
)

// The hub's own user publishes revocations and replies to requests it
// received, nothing else: a bug or a confused deputy in the hub cannot
// write into nodes' inboxes or the control plane's request subjects.
func TestHubUserPublishesOnlyRevocationsAndReplies(t *testing.T) {
	e := newEnv(t)
	a, _ := e.cluster("a")
	a1, s1 := e.node(a, "a1")
	n1, err := e.connect(a1.ID, s1, wire.InboxPrefix(a1.ID))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := e.connect(HubUser, e.creds.Password, "_INBOX_hubtest")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := n1.nc.SubscribeSync(wire.InboxPrefix(a1.ID) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := n1.nc.SubscribeSync(wire.RevokeSubject(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	hub.nc.Subscribe(wire.SyncSubjectAll, func(m *nats.Msg) { m.Respond([]byte("{}")) })
	n1.nc.Flush()
	hub.nc.Flush()

	for _, subj := range []string{wire.InboxPrefix(a1.ID) + ".unasked", wire.TokenSubject(a.ID, a1.ID), "$JS.API.STREAM.CREATE.x", "anything"} {
		hub.nc.Publish(subj, []byte("x"))
		// The server's -ERR arrives asynchronously: wait for it, boundedly.
		v := hub.violations()
		for deadline := time.Now().Add(3 * time.Second); !strings.Contains(v, subj) && time.Now().Before(deadline); {
			v = hub.violations()
		}
		if !strings.Contains(v, subj) {
			t.Fatalf("hub publish %s: no permissions violation (%q)", subj, v)
		}
	}
	if m, err := inbox.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("the hub wrote into a node's inbox unasked: %s", m.Subject)
	}
	// Allowed: revocations, and the reply to a request it received.
	hub.nc.Publish(wire.RevokeSubject(a.ID), []byte("r"))
	if _, err := rev.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("hub revocation: %v", err)
	}
	if _, err := n1.nc.Request(wire.SyncSubject(a.ID, a1.ID), []byte("{}"), 2*time.Second); err != nil {
		t.Fatalf("reply to the node's request: %v", err)
	}
}
