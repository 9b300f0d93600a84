package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestAudit(t *testing.T) { forEachStore(t, testAudit) }

func testAudit(t *testing.T, s *SQL) {
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	mk := func(ws, inst string, minute int) AuditEvent {
		return AuditEvent{
			Time: t0.Add(time.Duration(minute) * time.Minute), Workspace: ws, Install: inst, Cluster: "prod",
			Node: "node-1", ClientAddr: "10.0.0.1:1234", Upstream: "ghcr.io", Repository: "acme/app",
			Reference: "sha256:abc", Kind: "blob", Method: "GET", Bytes: 1 << 20, Status: 200,
			Duration: 1500 * time.Microsecond, Cache: []string{"hit", "miss", "stale", ""}[minute%4],
		}
	}
	batch := []AuditEvent{
		mk("acme", "web", 0), mk("acme", "api", 1), mk("other", "web", 2),
		mk("acme", "web", 3), mk("acme", "web", 4),
	}
	if err := s.AppendAudit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, nil); err != nil {
		t.Fatal(err)
	}

	all, err := s.QueryAudit(ctx, AuditQuery{})
	if err != nil || len(all) != 5 {
		t.Fatalf("QueryAudit(all) = %d events, %v", len(all), err)
	}
	for i, e := range all {
		want := batch[i]
		want.ID = e.ID
		want.Count = 1 // a zero Count stands for one request
		if e != want {
			t.Fatalf("event %d = %+v, want %+v", i, e, want)
		}
		if i > 0 && e.ID <= all[i-1].ID {
			t.Fatalf("IDs not ascending: %d after %d", e.ID, all[i-1].ID)
		}
	}
	ids := func(evs []AuditEvent) []int64 {
		var out []int64
		for _, e := range evs {
			out = append(out, e.ID-all[0].ID)
		}
		return out
	}

	for _, tc := range []struct {
		name string
		q    AuditQuery
		want []int64 // offsets into all
	}{
		{"workspace", AuditQuery{Workspace: "acme"}, []int64{0, 1, 3, 4}},
		{"workspace+install", AuditQuery{Workspace: "acme", Install: "web"}, []int64{0, 3, 4}},
		{"install only", AuditQuery{Install: "web"}, []int64{0, 2, 3, 4}},
		{"since (inclusive)", AuditQuery{Since: t0.Add(2 * time.Minute)}, []int64{2, 3, 4}},
		{"since in another zone", AuditQuery{Since: t0.Add(2 * time.Minute).In(time.FixedZone("Y", -7200))}, []int64{2, 3, 4}},
		{"after id", AuditQuery{AfterID: all[1].ID}, []int64{2, 3, 4}},
		{"after id + workspace", AuditQuery{Workspace: "acme", AfterID: all[1].ID}, []int64{3, 4}},
		{"after last", AuditQuery{AfterID: all[4].ID}, nil},
		{"limit", AuditQuery{Limit: 2}, []int64{0, 1}},
		{"limit + after id", AuditQuery{AfterID: all[0].ID, Limit: 2}, []int64{1, 2}},
		{"all filters", AuditQuery{Workspace: "acme", Install: "web", Since: t0.Add(time.Minute), AfterID: all[3].ID}, []int64{4}},
		{"no match", AuditQuery{Workspace: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.QueryAudit(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("got %v, want %v", ids(got), tc.want)
			}
		})
	}

	// Zero Time is set to now.
	before := time.Now()
	if err := s.AppendAudit(ctx, []AuditEvent{{Workspace: "acme"}}); err != nil {
		t.Fatal(err)
	}
	last, err := s.QueryAudit(ctx, AuditQuery{AfterID: all[4].ID})
	if err != nil || len(last) != 1 || last[0].Time.Before(before.Add(-time.Second)) {
		t.Fatalf("zero-time event = %+v, %v", last, err)
	}
}

func TestAuditLimits(t *testing.T) { forEachStore(t, testAuditLimits) }

func testAuditLimits(t *testing.T, s *SQL) {
	ctx := context.Background()
	// Bulk-load in SQL: AppendAudit of 10k events is slow under -race.
	if _, err := s.db.ExecContext(ctx, s.q(`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)
		INSERT INTO audit_events (ts, workspace, install, cluster, node, client_addr, upstream, repository, ref, kind, method, bytes, status, duration_ns)
		SELECT x, 'acme', '', '', '', '', '', '', '', '', '', 0, 200, 0 FROM n`), MaxAuditLimit+5); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{
		{0, DefaultAuditLimit},
		{-1, DefaultAuditLimit},
		{10, 10},
		{MaxAuditLimit + 1000, MaxAuditLimit},
	} {
		got, err := s.QueryAudit(ctx, AuditQuery{Limit: tc.limit})
		if err != nil || len(got) != tc.want {
			t.Errorf("Limit %d: %d events, %v; want %d", tc.limit, len(got), err, tc.want)
		}
	}
}
