package store

import (
	"context"
	"testing"
	"time"
)

func TestAuditWorkspaceSince(t *testing.T) { forEachStore(t, testAuditWorkspaceSince) }

// A member's audit scope starts at its workspace's creation: events of a
// deleted workspace of the same name stay out.
func testAuditWorkspaceSince(t *testing.T, s *SQL) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.AppendAudit(ctx, []AuditEvent{
		{Time: t0, Workspace: "a", Install: "old"},
		{Time: t0.Add(2 * time.Hour), Workspace: "a", Install: "new"},
		{Time: t0, Workspace: "b", Install: "x"},
	}); err != nil {
		t.Fatal(err)
	}
	since := map[string]time.Time{"a": t0.Add(time.Hour)}
	for _, c := range []struct {
		ws   []string
		want []string
	}{{[]string{"a"}, []string{"new"}}, {[]string{"a", "b"}, []string{"new", "x"}}, {[]string{"b"}, []string{"x"}}, {[]string{}, nil}} {
		evs, err := s.QueryAudit(ctx, AuditQuery{Workspaces: c.ws, WorkspaceSince: since})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Install)
		}
		if len(got) != len(c.want) || (len(got) > 0 && (got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1])) {
			t.Errorf("Workspaces %v: %v, want %v", c.ws, got, c.want)
		}
	}
	// Memberships carry their workspace's creation time.
	ws, err := s.CreateWorkspace(ctx, "scoped")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.AddMember(ctx, "scoped", "sam", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.MembershipsOf(ctx, m.UserID)
	if err != nil || len(ms) != 1 || !ms[0].WorkspaceCreatedAt.Equal(ws.CreatedAt) {
		t.Errorf("MembershipsOf: %+v %v, want workspace created at %v", ms, err, ws.CreatedAt)
	}
}
