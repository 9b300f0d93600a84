package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testlog"
)

// Audit shows nodes by name (the events carry the node's id, from the
// token), and --follow's rows line up with its header across polls.
func TestAuditNodeNamesAndFollowColumns(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	ws, err := h.st.CreateWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := h.st.CreateCluster(ctx, store.Cluster{Name: "prod", WorkspaceID: ws.ID}, []byte("join-hash"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := h.st.CreateNode(ctx, cl.ID, "worker-1", []byte("node-hash"))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(ref, nodeID string, status int) store.AuditEvent {
		return store.AuditEvent{Time: time.Now(), Workspace: "acme", Install: "web", Cluster: cl.ID, Node: nodeID,
			ClientAddr: "10.0.0.9", Upstream: "ghcr.io", Repository: "acme/app", Reference: ref, Kind: "manifest",
			Method: "GET", Bytes: 12, Status: status, Duration: 3 * time.Millisecond}
	}
	if err := h.st.AppendAudit(ctx, []store.AuditEvent{ev("v1", node.ID, 200)}); err != nil {
		t.Fatal(err)
	}
	var evs []api.AuditEvent
	if err := json.Unmarshal([]byte(h.ok("", "audit", "-w", "acme", "-o", "json")), &evs); err != nil || len(evs) != 1 {
		t.Fatalf("audit json: %v %d", err, len(evs))
	}
	if e := evs[0]; e.Node != node.ID || e.NodeName != "worker-1" || e.Cluster != cl.ID || e.ClusterName != "prod" {
		t.Errorf("audit event: %+v", e)
	}
	if out := h.ok("", "audit", "-w", "acme"); !strings.Contains(out, " worker-1 ") || strings.Contains(out, node.ID) {
		t.Errorf("audit table without the node's name:\n%s", out)
	}

	// --follow: the first poll prints the header and v1, later polls much
	// longer values; every row's columns start where the header's do.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout := &testlog.Buffer{}
	done := make(chan int)
	go func() {
		code, _, _ := h.runCtx(ctx, "", stdout, "audit", "-w", "acme", "--follow", "--poll-interval", "20ms")
		done <- code
	}()
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "v1") })
	gone := "node_deleted0123456789"
	if err := h.st.AppendAudit(context.Background(), []store.AuditEvent{ev("v2", gone, 401), ev("sha256:0123456789abcdef", node.ID, 200)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "sha256:") })
	cancel()
	<-done
	// The second poll's values are wider: the header comes again above
	// them, and every row lines up with the header above it.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME ") || !strings.HasPrefix(lines[2], "TIME ") {
		t.Fatalf("follow output:\n%s", stdout.String())
	}
	var header string
	for _, l := range lines {
		if strings.HasPrefix(l, "TIME ") {
			header = l
			continue
		}
		for _, col := range []string{"WORKSPACE", "NODE", "CLIENT", "REFERENCE", "KIND", "STATUS", "BYTES", "REASON"} {
			at := strings.Index(header, col)
			if len(l) <= at || l[at] == ' ' || l[at-1] != ' ' {
				t.Errorf("column %s (at %d) does not line up:\n%s\n%s", col, at, header, l)
			}
		}
	}
	if !strings.Contains(lines[3], gone) {
		t.Errorf("a deleted node is not shown by its id: %q", lines[3])
	}
}
