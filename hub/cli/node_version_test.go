package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/store"
)

// cluster node list shows what each node's agent last reported: its
// version and when (the API answers agent_version and last_seen_at).
func TestNodeListVersionAndContact(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	ws, err := h.st.CreateWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := h.st.CreateCluster(ctx, store.Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("join-hash"))
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := h.st.CreateNode(ctx, cl.ID, "worker-1", []byte("h1"))
	if _, err := h.st.CreateNode(ctx, cl.ID, "worker-2", []byte("h2")); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := h.st.NodeContact(ctx, seen.ID, "v1.4.2", at); err != nil {
		t.Fatal(err)
	}
	out := h.ok("", "cluster", "node", "list", "edge")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "VERSION") || !strings.Contains(lines[0], "LAST CONTACT") ||
		!strings.Contains(lines[1], "v1.4.2") || !strings.Contains(lines[1], "2026-11-30") ||
		!strings.Contains(lines[2], "unknown") || !strings.Contains(lines[2], "never") {
		t.Fatalf("node list:\n%s", out)
	}
	var nodes []api.Node
	if err := json.Unmarshal([]byte(h.ok("", "cluster", "node", "list", "edge", "-o", "json")), &nodes); err != nil {
		t.Fatal(err)
	}
	if nodes[0].AgentVersion != "v1.4.2" || nodes[0].LastSeenAt == nil || !nodes[0].LastSeenAt.Equal(at) || nodes[1].LastSeenAt != nil {
		t.Errorf("nodes json: %+v", nodes)
	}
}
