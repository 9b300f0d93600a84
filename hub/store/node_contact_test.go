package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNodeContact(t *testing.T) { forEachStore(t, testNodeContact) }

func testNodeContact(t *testing.T, s *SQL) {
	ctx := context.Background()
	ws, err := s.CreateWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCluster(ctx, Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("hash"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.CreateNode(ctx, c.ID, "node-a", []byte("secret-hash"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.NodeByID(ctx, n.ID); n.AgentVersion != "" || !n.LastSeenAt.IsZero() {
		t.Fatalf("new node: version %q last seen %v, want none", n.AgentVersion, n.LastSeenAt)
	}
	t1 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	t5 := t1.Add(4*time.Minute + time.Second)
	tests := []struct {
		name, version, want string
		at                  time.Time
		seen                time.Time // the recorded last contact; zero: at
	}{
		{"enrolment", "v1.2.0", "v1.2.0", t1, time.Time{}},
		{"an older agent's resync keeps the version", "", "v1.2.0", t1.Add(time.Minute), time.Time{}},
		{"an upgrade", "v1.3.0", "v1.3.0", t1.Add(2 * time.Minute), time.Time{}},
		{"markup and control characters are dropped", "v1<b>\n\x00é", "v1<b>", t1.Add(3 * time.Minute), time.Time{}},
		{"a long version is cut", strings.Repeat("9", 200), strings.Repeat("9", MaxAgentVersionLen), t1.Add(4 * time.Minute), time.Time{}},
		{"a new version within the interval is recorded at once", "v2.0.0", "v2.0.0", t5, time.Time{}},
		// A resync flood: contacts within NodeContactInterval of the
		// recorded one, with the same version or none, write nothing.
		{"a flood's same version writes nothing", "v2.0.0", "v2.0.0", t5.Add(NodeContactInterval / 2), t5},
		{"a flood's empty version writes nothing", "", "v2.0.0", t5.Add(NodeContactInterval - time.Second), t5},
		{"the interval over, the contact is recorded", "v2.0.0", "v2.0.0", t5.Add(NodeContactInterval), time.Time{}},
	}
	for _, tt := range tests {
		if err := s.NodeContact(ctx, n.ID, tt.version, tt.at); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		seen := tt.seen
		if seen.IsZero() {
			seen = tt.at
		}
		ns, err := s.ListNodes(ctx, "edge")
		if err != nil || len(ns) != 1 {
			t.Fatalf("%s: ListNodes = %+v, %v", tt.name, ns, err)
		}
		if ns[0].AgentVersion != tt.want || !ns[0].LastSeenAt.Equal(seen) {
			t.Errorf("%s: version %q last seen %v, want %q at %v", tt.name, ns[0].AgentVersion, ns[0].LastSeenAt, tt.want, seen)
		}
	}
	// An unknown node changes nothing and is not an error.
	if err := s.NodeContact(ctx, "node_nope", "v9", t1); err != nil {
		t.Fatal(err)
	}
}
