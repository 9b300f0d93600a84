package tokensvc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/pkg/wire"
)

func TestReplyAllowed(t *testing.T) {
	node := "node_0123456789abcdef"
	tok, sync := wire.TokenSubject("cl_a", node), wire.SyncSubject("cl_a", node)
	enrol := wire.EnrolSubject("cl_a")
	for _, c := range []struct {
		subject, reply string
		want           bool
	}{
		{tok, wire.InboxPrefix(node) + ".abc.1", true},
		{sync, wire.InboxPrefix(node) + ".x", true},
		{tok, wire.RevokeSubject("cl_b"), false},
		{sync, wire.RevokeSubject("cl_a"), false},
		{tok, wire.InboxPrefix(node), false},
		{tok, wire.InboxPrefix(node) + "x.y", false}, // another node whose id extends this one
		{tok, wire.InboxPrefix("node_other") + ".x", false},
		{tok, "_INBOX.abc", false},
		{tok, "", false},
		{enrol, wire.EnrolInboxPrefix(strings.Repeat("0f", 16)) + ".r.1", true},
		{enrol, wire.EnrolInboxPrefix("zz") + ".r", false},
		{enrol, wire.InboxPrefix(node) + ".x", false},
		{enrol, wire.RevokeSubject("cl_b"), false},
		{"pullgate.v1.other", wire.InboxPrefix(node) + ".x", false},
	} {
		if got := replyAllowed(c.subject, c.reply); got != c.want {
			t.Errorf("replyAllowed(%q, %q) = %v, want %v", c.subject, c.reply, got, c.want)
		}
	}
}

// A node names another cluster's revocation subject (or another node's
// inbox) as the reply of its own requests: the hub must not publish there,
// and must not act on the request at all (an enrol would create a node).
func TestRepliesGoOnlyToTheRequestersInbox(t *testing.T) {
	e := newEnv(t)
	ws := e.workspace("acme", "ghcr.io")
	other := e.workspace("globex", "ghcr.io")
	victimConn, victim := e.enrol("victim", other.ID, nil)
	attackConn, attacker := e.enrol("attacker", ws.ID, nil)

	got := make(chan *nats.Msg, 64)
	for _, subj := range []string{wire.RevokeSubject(victim.ClusterID), wire.InboxPrefix(victim.NodeID) + ".stolen"} {
		if _, err := victimConn.ChanSubscribe(subj, got); err != nil {
			t.Fatal(err)
		}
	}
	if err := victimConn.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	join, hash := natsauth.NewJoinToken(attacker.ClusterID)
	if err := e.store.RotateJoinToken(ctx, "attacker", hash); err != nil {
		t.Fatal(err)
	}
	enrolID := strings.Repeat("ab", 16)
	enrolConn, err := nats.Connect(e.url, nats.UserInfo(wire.EnrolUser(enrolID), join), nats.CustomInboxPrefix(wire.EnrolInboxPrefix(enrolID)))
	if err != nil {
		t.Fatal(err)
	}
	defer enrolConn.Close()
	nodesBefore, err := e.store.ListNodes(ctx, "attacker")
	if err != nil {
		t.Fatal(err)
	}

	body := func(v any) []byte { b, _ := json.Marshal(v); return b }
	for _, reply := range []string{wire.RevokeSubject(victim.ClusterID), wire.InboxPrefix(victim.NodeID) + ".stolen"} {
		for _, p := range []struct {
			nc      *nats.Conn
			subject string
			data    []byte
		}{
			{attackConn, wire.TokenSubject(attacker.ClusterID, attacker.NodeID), body(wire.TokenRequest{Image: "ghcr.io/acme/web:1"})},
			{attackConn, wire.SyncSubject(attacker.ClusterID, attacker.NodeID), body(wire.SyncRequest{})},
			{attackConn, wire.TokenSubject(attacker.ClusterID, attacker.NodeID), []byte("not json")},
			{enrolConn, wire.EnrolSubject(attacker.ClusterID), body(wire.EnrolRequest{NodeName: "rogue"})},
		} {
			if err := p.nc.PublishRequest(p.subject, reply, p.data); err != nil {
				t.Fatalf("publish %s: %v", p.subject, err)
			}
		}
	}
	for _, nc := range []*nats.Conn{attackConn, enrolConn} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	// The attacker's own requests still work, and were handled after the
	// injected ones (one queue subscription per subject, in order).
	var sync wire.SyncReply
	e.request(attackConn, wire.SyncSubject(attacker.ClusterID, attacker.NodeID), wire.SyncRequest{}, &sync)
	if sync.Error != "" {
		t.Fatalf("own sync: %+v", sync)
	}
	var enrolled wire.EnrolReply
	e.request(enrolConn, wire.EnrolSubject(attacker.ClusterID), wire.EnrolRequest{NodeName: "honest"}, &enrolled)
	if enrolled.Error != "" || enrolled.NodeID == "" {
		t.Fatalf("own enrol: %+v", enrolled)
	}
	select {
	case m := <-got:
		t.Fatalf("the hub published on %s for another cluster's node: %s", m.Subject, m.Data)
	case <-time.After(500 * time.Millisecond):
	}
	nodes, err := e.store.ListNodes(ctx, "attacker")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != len(nodesBefore)+1 {
		t.Fatalf("nodes of the attacker's cluster: %d before, %d after one honest enrol", len(nodesBefore), len(nodes))
	}
}
