package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAuditFiltersAndStats(t *testing.T) { forEachStore(t, testAuditFiltersAndStats) }

func testAuditFiltersAndStats(t *testing.T, s *SQL) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	ev := func(min int, ref, install, upstream, repo, node, kind string, status int, bytes int64, reason string) AuditEvent {
		return AuditEvent{Time: t0.Add(time.Duration(min) * time.Minute), Workspace: "acme", Install: install, Upstream: upstream,
			Repository: repo, Node: node, Reference: ref, Kind: kind, Method: "GET", Status: status, Bytes: bytes, Reason: reason}
	}
	batch := []AuditEvent{
		ev(0, "a", "web", "ghcr.io", "acme/app", "node_1", "manifest", 200, 100, ""),
		ev(5, "b", "web", "ghcr.io", "acme/app", "node_1", "blob", 200, 1000, ""),
		ev(20, "c", "api", "docker.io", "library/redis", "node_2", "manifest", 404, 50, ""),
		ev(25, "d", "api", "docker.io", "library/redis", "node_2", "manifest", 401, 0, "install_disabled"),
		ev(70, "e", "web", "ghcr.io", "acme/other", "node_2", "manifest", 200, 10, ""),
	}
	batch[3].Count = 3
	if err := s.AppendAudit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all, _ := s.QueryAudit(ctx, AuditQuery{})
	refs := func(evs []AuditEvent) string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Reference)
		}
		return strings.Join(out, " ")
	}
	cases := []struct {
		name string
		q    AuditQuery
		want string
	}{
		{"repository", AuditQuery{Repository: "acme/app"}, "a b"},
		{"upstream", AuditQuery{Upstream: "docker.io"}, "c d"},
		{"node", AuditQuery{Node: "node_2"}, "c d e"},
		{"status class", AuditQuery{StatusMin: 400, StatusMax: 499}, "c d"},
		{"exact status", AuditQuery{StatusMin: 200, StatusMax: 200}, "a b e"},
		{"time range", AuditQuery{Since: t0.Add(5 * time.Minute), Until: t0.Add(25 * time.Minute)}, "b c"},
		{"newest first", AuditQuery{Desc: true, Limit: 2}, "e d"},
		{"page back", AuditQuery{Desc: true, BeforeID: all[2].ID, Limit: 2}, "b a"},
		{"combined", AuditQuery{Node: "node_2", Repository: "library/redis", StatusMin: 401, StatusMax: 401}, "d"},
		{"no match", AuditQuery{Repository: "acme/nope"}, ""},
	}
	for _, c := range cases {
		got, err := s.QueryAudit(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if refs(got) != c.want {
			t.Errorf("%s: events %q, want %q", c.name, refs(got), c.want)
		}
	}

	hour := time.Hour
	stats, err := s.AuditStats(ctx, AuditQuery{Workspace: "acme"}, AuditByInstall, hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []AuditBucket{
		{Start: t0, Key: "api", Requests: 4, Pulls: 0, Refused: 3, Bytes: 50},
		{Start: t0, Key: "web", Requests: 2, Pulls: 1, Refused: 0, Bytes: 1100},
		{Start: t0.Add(hour), Key: "web", Requests: 1, Pulls: 1, Refused: 0, Bytes: 10},
	}
	if len(stats) != len(want) {
		t.Fatalf("stats by install = %+v, want %+v", stats, want)
	}
	for i := range want {
		if !stats[i].Start.Equal(want[i].Start) || stats[i].Key != want[i].Key || stats[i].Requests != want[i].Requests ||
			stats[i].Pulls != want[i].Pulls || stats[i].Refused != want[i].Refused || stats[i].Bytes != want[i].Bytes {
			t.Errorf("bucket %d = %+v, want %+v", i, stats[i], want[i])
		}
	}
	up, err := s.AuditStats(ctx, AuditQuery{Since: t0.Add(time.Minute)}, AuditByUpstream, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(up) != 3 || up[0].Key != "docker.io" || up[0].Requests != 4 || up[1].Key != "ghcr.io" || up[1].Bytes != 1000 || up[2].Bytes != 10 {
		t.Errorf("stats by upstream = %+v", up)
	}
	if _, err := s.AuditStats(ctx, AuditQuery{}, "repository; DROP TABLE audit_events", hour); err == nil {
		t.Error("stats grouped by an arbitrary column: no error")
	}
}
