package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func openTest(t testing.TB) (*SQL, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustWorkspace(t testing.TB, s *SQL, name string) Workspace {
	t.Helper()
	w, err := s.CreateWorkspace(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateWorkspace(%q): %v", name, err)
	}
	return w
}

func mustCredential(t testing.TB, s *SQL, ws, name string, secret string) Credential {
	t.Helper()
	c, err := s.CreateCredential(context.Background(), ws, Credential{
		Name: name, Host: "ghcr.io/org-a", Kind: "basic", Username: "bot", Enabled: true,
	}, Sealed(secret))
	if err != nil {
		t.Fatalf("CreateCredential(%q, %q): %v", ws, name, err)
	}
	return c
}

// mustInstall creates an install bound to the workspace's own cluster
// "prod-<ws>" (created on first use).
func mustInstall(t testing.TB, s *SQL, ws, name string, repos []string) Install {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetCluster(ctx, "prod-"+ws); errors.Is(err, ErrNotFound) {
		w, err := s.GetWorkspace(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateCluster(ctx, Cluster{Name: "prod-" + ws, WorkspaceID: w.ID}, []byte("h")); err != nil {
			t.Fatal(err)
		}
	}
	in, err := s.CreateInstall(ctx, ws, Install{
		Name: name, Cluster: "prod-" + ws, Namespace: "default", ServiceAccount: "puller", Repos: repos, Enabled: true,
	})
	if err != nil {
		t.Fatalf("CreateInstall(%q, %q): %v", ws, name, err)
	}
	return in
}

func wantErr(t *testing.T, err, target error, contains string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %q, want it to contain %q", err, contains)
	}
}

func installEqual(a, b Install) bool {
	return a.ID == b.ID && a.WorkspaceID == b.WorkspaceID && a.Name == b.Name && a.Cluster == b.Cluster && a.ClusterID == b.ClusterID &&
		a.Namespace == b.Namespace && a.ServiceAccount == b.ServiceAccount && slices.Equal(a.Repos, b.Repos) &&
		a.Enabled == b.Enabled && a.Generation == b.Generation && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}

func count(t *testing.T, s *SQL, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
