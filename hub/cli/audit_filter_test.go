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

// The audit command's filters reach the API: each narrows the answer.
func TestAuditFilterFlags(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	now := time.Now()
	ev := func(ref, repo, upstream, node string, status int, ago time.Duration) store.AuditEvent {
		return store.AuditEvent{Time: now.Add(-ago), Workspace: "acme", Install: "web", Node: node, Upstream: upstream,
			Repository: repo, Reference: ref, Kind: "manifest", Method: "GET", Status: status}
	}
	if err := h.st.AppendAudit(ctx, []store.AuditEvent{
		ev("a", "acme/app", "ghcr.io", "node_1", 200, 3*time.Hour),
		ev("b", "acme/app", "ghcr.io", "node_2", 404, 2*time.Hour),
		ev("c", "library/redis", "docker.io", "node_2", 200, time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--repository", "acme/app"}, "a b"},
		{[]string{"--upstream", "docker.io"}, "c"},
		{[]string{"--node", "node_2"}, "b c"},
		{[]string{"--status", "4xx"}, "b"},
		{[]string{"--until", "30m"}, "a b"},
	}
	for _, c := range cases {
		out := h.ok("", append([]string{"audit", "--since", "all", "-o", "json"}, c.args...)...)
		var evs []api.AuditEvent
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
		var refs []string
		for _, e := range evs {
			refs = append(refs, e.Reference)
		}
		if got := strings.Join(refs, " "); got != c.want {
			t.Errorf("%v: events %q, want %q", c.args, got, c.want)
		}
	}
}
