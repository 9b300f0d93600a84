package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWorkspaces(t *testing.T) { forEachStore(t, testWorkspaces) }

func testWorkspaces(t *testing.T, s *SQL) {
	ctx := context.Background()

	ws, err := s.ListWorkspaces(ctx)
	if err != nil || len(ws) != 0 {
		t.Fatalf("ListWorkspaces on empty store = %v, %v", ws, err)
	}
	before := time.Now()
	b := mustWorkspace(t, s, "beta")
	a := mustWorkspace(t, s, "alpha")
	if !strings.HasPrefix(a.ID, "ws_") || len(a.ID) != 3+32 || a.ID == b.ID {
		t.Errorf("IDs = %q, %q", a.ID, b.ID)
	}
	if a.CreatedAt.Location() != time.UTC || a.CreatedAt.Before(before.Add(-time.Second)) {
		t.Errorf("CreatedAt = %v", a.CreatedAt)
	}

	got, err := s.GetWorkspace(ctx, "alpha")
	if err != nil || got != a {
		t.Fatalf("GetWorkspace = %+v, %v; want %+v", got, err, a)
	}
	ws, err = s.ListWorkspaces(ctx)
	if err != nil || !slices.Equal(ws, []Workspace{a, b}) {
		t.Fatalf("ListWorkspaces = %+v, %v", ws, err)
	}

	_, err = s.CreateWorkspace(ctx, "alpha")
	wantErr(t, err, ErrConflict, `workspace "alpha"`)
	_, err = s.GetWorkspace(ctx, "nope")
	wantErr(t, err, ErrNotFound, `workspace "nope": not found`)
	_, err = s.DeleteWorkspace(ctx, "nope", true)
	wantErr(t, err, ErrNotFound, `workspace "nope"`)

	if _, err := s.DeleteWorkspace(ctx, "alpha", false); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetWorkspace(ctx, "alpha")
	wantErr(t, err, ErrNotFound, "")
	// The name is free again.
	mustWorkspace(t, s, "alpha")
}

func TestWorkspaceByID(t *testing.T) { forEachStore(t, testWorkspaceByID) }

func testWorkspaceByID(t *testing.T, s *SQL) {
	ws := mustWorkspace(t, s, "acme")
	got, err := s.WorkspaceByID(context.Background(), ws.ID)
	if err != nil || got.Name != "acme" || got.ID != ws.ID {
		t.Fatalf("WorkspaceByID = %+v, %v", got, err)
	}
	_, err = s.WorkspaceByID(context.Background(), "ws_nope")
	wantErr(t, err, ErrNotFound, "ws_nope")
}

func TestDeleteWorkspaceCascades(t *testing.T) { forEachStore(t, testDeleteWorkspaceCascades) }

func testDeleteWorkspaceCascades(t *testing.T, s *SQL) {
	ctx := context.Background()
	for _, ws := range []string{"acme", "other"} {
		mustWorkspace(t, s, ws)
		mustCredential(t, s, ws, "c1", "s")
		mustCredential(t, s, ws, "c2", "s")
		if _, err := s.UpdateCredential(ctx, ws, "c1", CredentialUpdate{Secret: Sealed("s2")}); err != nil {
			t.Fatal(err)
		}
		mustInstall(t, s, ws, "i1", nil)
	}
	if err := s.AppendAudit(ctx, []AuditEvent{{Workspace: "acme", Install: "i1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteWorkspace(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{
		"workspaces": 1, "credentials": 2, "credential_secrets": 3, "installs": 1, "clusters": 1,
		"audit_events": 1, // the trail outlives the workspace
	} {
		if n := count(t, s, table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
}
