package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

func TestOpenSQLiteFileAndPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "hub.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWorkspace(t, s, "ws") // make sure the WAL file exists
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), m)
		}
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("dir mode = %o, want 700", m)
	}

	ctx := context.Background()
	for _, pool := range []struct {
		name string
		q    queryRower
	}{{"writer", s.db}, {"reader", s.rdb}} {
		for _, c := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"busy_timeout", "5000"},
			{"foreign_keys", "1"},
			{"synchronous", "1"}, // NORMAL
		} {
			var got string
			if err := pool.q.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", pool.name, c.pragma, err)
			}
			if got != c.want {
				t.Errorf("%s: PRAGMA %s = %q, want %q", pool.name, c.pragma, got, c.want)
			}
		}
	}
	// Reader connections are read-only.
	if _, err := s.rdb.ExecContext(ctx, `DELETE FROM workspaces`); err == nil {
		t.Error("write through the reader pool succeeded")
	}
}

func TestReopenPersistsAndMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w := mustWorkspace(t, s, "acme")
	c := mustCredential(t, s, "acme", "ghcr", "sealed-1")
	in := mustInstall(t, s, "acme", "web", []string{"ghcr.io/acme/*"})
	if err := s.AppendAudit(ctx, []AuditEvent{{Workspace: "acme", Install: "web", Status: 200}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s, err = OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		gw, err := s.GetWorkspace(ctx, "acme")
		if err != nil || gw != w {
			t.Fatalf("GetWorkspace after reopen = %+v, %v; want %+v", gw, err, w)
		}
		gc, err := s.GetCredential(ctx, "acme", "ghcr")
		if err != nil || !reflect.DeepEqual(gc, c) {
			t.Fatalf("GetCredential after reopen = %+v, %v; want %+v", gc, err, c)
		}
		gi, err := s.InstallByID(ctx, in.ID)
		if err != nil || !installEqual(gi, in) {
			t.Fatalf("InstallByID after reopen = %+v, %v; want %+v", gi, err, in)
		}
		ev, err := s.QueryAudit(ctx, AuditQuery{})
		if err != nil || len(ev) != 1 {
			t.Fatalf("QueryAudit after reopen = %v, %v", ev, err)
		}
		ms, err := loadMigrations(s.migrationDir())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := OpenSQLite(ctx, path); err == nil {
		s2.Close()
		t.Fatal("OpenSQLite succeeded on a database from the future")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("err = %v", err)
	}
}

func installEqual(a, b Install) bool {
	return a.ID == b.ID && a.WorkspaceID == b.WorkspaceID && a.Name == b.Name && a.Cluster == b.Cluster && a.ClusterID == b.ClusterID &&
		a.Namespace == b.Namespace && a.ServiceAccount == b.ServiceAccount && slices.Equal(a.Repos, b.Repos) &&
		a.Enabled == b.Enabled && a.Generation == b.Generation && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"acme", true},
		{"acme-prod.eu_1", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{"Acme", false},
		{"-acme", false},
		{"acme-", false},
		{".acme", false},
		{"acme.", false},
		{"ac me", false},
		{"ac/me", false},
		{"acmé", false},
		{"acme\n", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}

	s, _ := openTest(t)
	ctx := context.Background()
	mustWorkspace(t, s, "ws")
	_, err := s.CreateWorkspace(ctx, "Bad")
	wantErr(t, err, ErrInvalid, `workspace name "Bad"`)
	_, err = s.CreateCredential(ctx, "ws", Credential{Name: "Bad", Host: "h", Kind: "basic"}, Sealed("x"))
	wantErr(t, err, ErrInvalid, `credential name "Bad"`)
	_, err = s.CreateInstall(ctx, "ws", Install{Name: "a b"})
	wantErr(t, err, ErrInvalid, `install name "a b"`)
}

func TestWorkspaces(t *testing.T) {
	s, _ := openTest(t)
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

func TestCredentials(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	w := mustWorkspace(t, s, "acme")
	other := mustWorkspace(t, s, "other")

	c, err := s.CreateCredential(ctx, "acme", Credential{
		ID: "ignored", Name: "ghcr", Host: "ghcr.io/org-a", Kind: "basic", Username: "bot", Insecure: true, Enabled: true,
	}, Sealed("sealed-v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, "cred_") || c.WorkspaceID != w.ID || c.Version != 1 || !c.Enabled || !c.Insecure ||
		c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Fatalf("created = %+v", c)
	}
	got, err := s.GetCredential(ctx, "acme", "ghcr")
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("GetCredential = %+v, %v; want %+v", got, err, c)
	}
	dis, err := s.CreateCredential(ctx, "acme", Credential{Name: "docker", Host: "docker.io", Kind: "token"}, Sealed("tok"))
	if err != nil || dis.Enabled {
		t.Fatalf("CreateCredential(disabled) = %+v, %v", dis, err)
	}
	// Same name in another workspace is fine.
	oc := mustCredential(t, s, "other", "ghcr", "other-secret")

	list, err := s.ListCredentials(ctx, "acme")
	if err != nil || !reflect.DeepEqual(list, []Credential{dis, c}) {
		t.Fatalf("ListCredentials = %+v, %v", list, err)
	}
	byID, err := s.CredentialsByWorkspaceID(ctx, w.ID)
	if err != nil || !reflect.DeepEqual(byID, list) {
		t.Fatalf("CredentialsByWorkspaceID = %+v, %v", byID, err)
	}
	byID, err = s.CredentialsByWorkspaceID(ctx, other.ID)
	if err != nil || !reflect.DeepEqual(byID, []Credential{oc}) {
		t.Fatalf("CredentialsByWorkspaceID(other) = %+v, %v", byID, err)
	}
	byID, err = s.CredentialsByWorkspaceID(ctx, "ws_unknown")
	if err != nil || len(byID) != 0 {
		t.Fatalf("CredentialsByWorkspaceID(unknown) = %+v, %v", byID, err)
	}

	// Errors.
	for _, tc := range []struct {
		name   string
		err    error
		target error
		msg    string
	}{
		{"duplicate", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "ghcr", Host: "h", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrConflict, `credential "ghcr" in workspace "acme"`},
		{"create in missing workspace", func() error {
			_, err := s.CreateCredential(ctx, "nope", Credential{Name: "x", Host: "h", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrNotFound, `workspace "nope"`},
		{"empty secret", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "x", Host: "h", Kind: "basic"}, nil)
			return err
		}(), ErrInvalid, "secret"},
		{"empty host", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "x", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrInvalid, "host"},
		{"get missing", func() error { _, err := s.GetCredential(ctx, "acme", "nope"); return err }(),
			ErrNotFound, `credential "nope" in workspace "acme": not found`},
		{"get in missing workspace", func() error { _, err := s.GetCredential(ctx, "nope", "ghcr"); return err }(),
			ErrNotFound, `workspace "nope": not found`},
		{"list in missing workspace", func() error { _, err := s.ListCredentials(ctx, "nope"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"update missing", func() error {
			_, err := s.UpdateCredential(ctx, "acme", "nope", CredentialUpdate{})
			return err
		}(), ErrNotFound, `credential "nope"`},
		{"update empty secret", func() error {
			_, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed{}})
			return err
		}(), ErrInvalid, "secret"},
		{"delete missing", s.DeleteCredential(ctx, "acme", "nope"), ErrNotFound, `credential "nope"`},
		{"delete in missing workspace", s.DeleteCredential(ctx, "nope", "ghcr"), ErrNotFound, `workspace "nope"`},
		{"secret of missing version", func() error { _, err := s.CredentialSecret(ctx, c.ID, 2); return err }(),
			ErrNotFound, "version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.target, tc.msg) })
	}

	// Updates without a secret keep the version but bump UpdatedAt.
	user, off := "robot", false
	u1, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Username: &user, Insecure: &off})
	if err != nil {
		t.Fatal(err)
	}
	if u1.Username != "robot" || u1.Insecure || !u1.Enabled || u1.Version != 1 || !u1.UpdatedAt.After(c.UpdatedAt) ||
		!u1.CreatedAt.Equal(c.CreatedAt) || u1.Host != c.Host || u1.Kind != c.Kind {
		t.Fatalf("after update = %+v", u1)
	}
	// New secret versions.
	u2, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed("sealed-v2"), Enabled: &off})
	if err != nil || u2.Version != 2 || u2.Enabled {
		t.Fatalf("after secret update = %+v, %v", u2, err)
	}
	u3, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed("sealed-v3")})
	if err != nil || u3.Version != 3 || u3.Username != "robot" {
		t.Fatalf("after second secret update = %+v, %v", u3, err)
	}
	if got, _ := s.GetCredential(ctx, "acme", "ghcr"); !reflect.DeepEqual(got, u3) {
		t.Fatalf("GetCredential = %+v, want %+v", got, u3)
	}
	for v, want := range map[int]string{1: "sealed-v1", 2: "sealed-v2", 3: "sealed-v3"} {
		sec, err := s.CredentialSecret(ctx, c.ID, v)
		if err != nil || string(sec) != want {
			t.Errorf("CredentialSecret(v%d) = %q, %v; want %q", v, sec, err, want)
		}
	}
	if sec, err := s.CredentialSecret(ctx, oc.ID, 1); err != nil || string(sec) != "other-secret" {
		t.Errorf("other workspace secret = %q, %v", sec, err)
	}

	if err := s.DeleteCredential(ctx, "acme", "ghcr"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCredential(ctx, "acme", "ghcr")
	wantErr(t, err, ErrNotFound, "")
	_, err = s.CredentialSecret(ctx, c.ID, 1)
	wantErr(t, err, ErrNotFound, "")
	if _, err := s.GetCredential(ctx, "other", "ghcr"); err != nil {
		t.Fatalf("other workspace's credential went too: %v", err)
	}
}

func TestInstalls(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	w := mustWorkspace(t, s, "acme")
	mustWorkspace(t, s, "other")

	in := mustInstall(t, s, "acme", "web", []string{"ghcr.io/acme/*", "docker.io/library/nginx"})
	if !strings.HasPrefix(in.ID, "inst_") || in.WorkspaceID != w.ID || in.Generation != 1 || !in.Enabled ||
		in.Cluster != "prod-acme" || in.ClusterID == "" || in.Namespace != "default" || in.ServiceAccount != "puller" {
		t.Fatalf("created = %+v", in)
	}
	got, err := s.GetInstall(ctx, "acme", "web")
	if err != nil || !installEqual(got, in) {
		t.Fatalf("GetInstall = %+v, %v; want %+v", got, err, in)
	}
	got, err = s.InstallByID(ctx, in.ID)
	if err != nil || !installEqual(got, in) {
		t.Fatalf("InstallByID = %+v, %v; want %+v", got, err, in)
	}
	all := mustInstall(t, s, "acme", "api", nil)
	if got, _ := s.GetInstall(ctx, "acme", "api"); got.Repos != nil {
		t.Errorf("nil repos came back as %#v", got.Repos)
	}
	mustInstall(t, s, "other", "web", nil)

	list, err := s.ListInstalls(ctx, "acme")
	if err != nil || len(list) != 2 || !installEqual(list[0], all) || !installEqual(list[1], in) {
		t.Fatalf("ListInstalls = %+v, %v", list, err)
	}

	for _, tc := range []struct {
		name   string
		err    error
		target error
		msg    string
	}{
		{"duplicate", func() error { _, err := s.CreateInstall(ctx, "acme", Install{Name: "web"}); return err }(),
			ErrConflict, `install "web" in workspace "acme"`},
		{"create in missing workspace", func() error { _, err := s.CreateInstall(ctx, "nope", Install{Name: "web"}); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"get missing", func() error { _, err := s.GetInstall(ctx, "acme", "nope"); return err }(),
			ErrNotFound, `install "nope" in workspace "acme": not found`},
		{"get in missing workspace", func() error { _, err := s.GetInstall(ctx, "nope", "web"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"by missing id", func() error { _, err := s.InstallByID(ctx, "inst_nope"); return err }(),
			ErrNotFound, "inst_nope"},
		{"list in missing workspace", func() error { _, err := s.ListInstalls(ctx, "nope"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"update missing", func() error { _, err := s.UpdateInstall(ctx, "acme", "nope", InstallUpdate{}); return err }(),
			ErrNotFound, `install "nope"`},
		{"delete missing", s.DeleteInstall(ctx, "acme", "nope"), ErrNotFound, `install "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.target, tc.msg) })
	}

	if err := s.DeleteInstall(ctx, "acme", "api"); err != nil {
		t.Fatal(err)
	}
	_, err = s.InstallByID(ctx, all.ID)
	wantErr(t, err, ErrNotFound, "")
	if _, err := s.GetInstall(ctx, "other", "web"); err != nil {
		t.Fatal(err)
	}
}

func TestInstallGeneration(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	mustWorkspace(t, s, "acme")
	in := mustInstall(t, s, "acme", "web", []string{"a/*"})

	on, off := true, false
	repos := func(r ...string) *[]string { return &r }
	steps := []struct {
		name    string
		u       InstallUpdate
		gen     int64
		enabled bool
		repos   []string
	}{
		{"no-op", InstallUpdate{}, 1, true, []string{"a/*"}},
		{"enable while enabled", InstallUpdate{Enabled: &on}, 1, true, []string{"a/*"}},
		{"same repos", InstallUpdate{Repos: repos("a/*")}, 1, true, []string{"a/*"}},
		{"disable bumps", InstallUpdate{Enabled: &off}, 2, false, []string{"a/*"}},
		{"disable while disabled", InstallUpdate{Enabled: &off}, 2, false, []string{"a/*"}},
		{"enable does not bump", InstallUpdate{Enabled: &on}, 2, true, []string{"a/*"}},
		{"repo change bumps", InstallUpdate{Repos: repos("a/*", "b/*")}, 3, true, []string{"a/*", "b/*"}},
		{"repo order change bumps", InstallUpdate{Repos: repos("b/*", "a/*")}, 4, true, []string{"b/*", "a/*"}},
		{"clear repos bumps", InstallUpdate{Repos: repos()}, 5, true, []string{}},
		{"disable and change repos bumps once", InstallUpdate{Enabled: &off, Repos: repos("c/*")}, 6, false, []string{"c/*"}},
	}
	prev := in
	for _, st := range steps {
		got, err := s.UpdateInstall(ctx, "acme", "web", st.u)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got.Generation != st.gen || got.Enabled != st.enabled || !slices.Equal(got.Repos, st.repos) {
			t.Fatalf("%s: got gen=%d enabled=%v repos=%q; want gen=%d enabled=%v repos=%q",
				st.name, got.Generation, got.Enabled, got.Repos, st.gen, st.enabled, st.repos)
		}
		if !got.UpdatedAt.After(prev.UpdatedAt) || !got.CreatedAt.Equal(in.CreatedAt) {
			t.Fatalf("%s: timestamps %v/%v after %v", st.name, got.CreatedAt, got.UpdatedAt, prev.UpdatedAt)
		}
		stored, err := s.InstallByID(ctx, in.ID)
		if err != nil || !installEqual(stored, got) {
			t.Fatalf("%s: stored = %+v, %v; returned %+v", st.name, stored, err, got)
		}
		prev = got
	}
}

func count(t *testing.T, s *SQL, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteWorkspaceCascades(t *testing.T) {
	s, _ := openTest(t)
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

func TestSigningKeys(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if keys, err := s.ListSigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListSigningKeys on empty store = %v, %v", keys, err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	k2 := SigningKey{KID: "k2", Public: []byte("pub2"), Private: Sealed("priv2"), CreatedAt: t0.Add(time.Hour)}
	k1 := SigningKey{KID: "k1", Public: []byte("pub1"), Private: Sealed("priv1"), CreatedAt: t0.In(time.FixedZone("X", 3600))}
	for _, k := range []SigningKey{k2, k1} {
		if err := s.AddSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSigningKey(ctx, SigningKey{KID: "k3", Public: []byte("p"), Private: Sealed("s")}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddSigningKey(ctx, k1), ErrConflict, `signing key "k1"`)
	wantErr(t, s.AddSigningKey(ctx, SigningKey{Public: []byte("p"), Private: Sealed("s")}), ErrInvalid, "kid")

	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 3 {
		t.Fatalf("ListSigningKeys = %v, %v", keys, err)
	}
	if keys[0].KID != "k1" || keys[1].KID != "k2" || keys[2].KID != "k3" {
		t.Fatalf("order = %s %s %s", keys[0].KID, keys[1].KID, keys[2].KID)
	}
	if !keys[0].CreatedAt.Equal(t0) || keys[0].CreatedAt.Location() != time.UTC ||
		!bytes.Equal(keys[0].Public, k1.Public) || !bytes.Equal(keys[0].Private, k1.Private) {
		t.Fatalf("k1 = %+v", keys[0])
	}
	if keys[2].CreatedAt.IsZero() {
		t.Fatal("zero CreatedAt not filled in")
	}
}

func TestAudit(t *testing.T) {
	s, _ := openTest(t)
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

func TestAuditLimits(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	// Bulk-load in SQL: AppendAudit of 10k events is slow under -race.
	if _, err := s.db.Exec(`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)
		INSERT INTO audit_events (ts, workspace, install, cluster, node, client_addr, upstream, repository, ref, kind, method, bytes, status, duration_ns)
		SELECT x, 'acme', '', '', '', '', '', '', '', '', '', 0, 200, 0 FROM n`, MaxAuditLimit+5); err != nil {
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

// TestConcurrent runs writers and readers side by side; SQLite must not
// report "database is locked".
func TestConcurrent(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	w := mustWorkspace(t, s, "acme")
	mustCredential(t, s, "acme", "ghcr", "s")
	in := mustInstall(t, s, "acme", "web", []string{"a/*"})

	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*8)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := false
			for i := range rounds {
				batch := []AuditEvent{
					{Workspace: "acme", Install: "web", Node: fmt.Sprint(g)},
					{Workspace: "acme", Install: "web", Node: fmt.Sprint(g)},
				}
				if err := s.AppendAudit(ctx, batch); err != nil {
					errs <- err
				}
				if _, err := s.InstallByID(ctx, in.ID); err != nil {
					errs <- err
				}
				if _, err := s.CredentialsByWorkspaceID(ctx, w.ID); err != nil {
					errs <- err
				}
				if _, err := s.QueryAudit(ctx, AuditQuery{Workspace: "acme", Limit: 50}); err != nil {
					errs <- err
				}
				switch i % 5 {
				case 0:
					if _, err := s.CreateInstall(ctx, "acme", Install{Name: fmt.Sprintf("i-%d-%d", g, i)}); err != nil {
						errs <- err
					}
				case 1:
					if _, err := s.UpdateInstall(ctx, "acme", "web", InstallUpdate{Enabled: &off}); err != nil {
						errs <- err
					}
				case 2:
					if _, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed("x")}); err != nil {
						errs <- err
					}
				case 3:
					if _, err := s.ListInstalls(ctx, "acme"); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, s, "audit_events"); n != workers*rounds*2 {
		t.Errorf("audit rows = %d, want %d", n, workers*rounds*2)
	}
	c, err := s.GetCredential(ctx, "acme", "ghcr")
	if want := 1 + workers*rounds/5; err != nil || c.Version != want {
		t.Errorf("credential version = %d, %v; want %d", c.Version, err, want)
	}
	if n := count(t, s, "installs"); n != 1+workers*rounds/5 {
		t.Errorf("installs = %d", n)
	}
}

// TestTwoHandles opens the same file twice (as two processes would) and
// writes through both: busy_timeout and BEGIN IMMEDIATE must keep SQLite
// from failing with "database is locked".
func TestTwoHandles(t *testing.T) {
	s1, path := openTest(t)
	ctx := context.Background()
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	mustWorkspace(t, s1, "acme")
	mustInstall(t, s1, "acme", "web", nil)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g, s := range []*SQL{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := s.AppendAudit(ctx, []AuditEvent{{Workspace: "acme", Node: fmt.Sprint(g)}}); err != nil {
					errs <- err
				}
				repos := []string{fmt.Sprintf("r%d-%d", g, i)}
				if _, err := s.UpdateInstall(ctx, "acme", "web", InstallUpdate{Repos: &repos}); err != nil {
					errs <- err
				}
				if _, err := s.GetInstall(ctx, "acme", "web"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	in, err := s2.GetInstall(ctx, "acme", "web")
	if err != nil || in.Generation != 1+40 {
		t.Errorf("generation = %d, %v; want 41 (no lost updates)", in.Generation, err)
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`INSERT INTO t VALUES (?, '?', "?", ?)`, `INSERT INTO t VALUES ($1, '?', "?", $2)`},
		{`SELECT 'it''s ?' , ?`, `SELECT 'it''s ?' , $1`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMigrationsParse(t *testing.T) {
	sq, err := loadMigrations("migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations("migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) == 0 || len(sq) != len(pg) {
		t.Fatalf("%d sqlite migrations, %d postgres", len(sq), len(pg))
	}
	for i := range sq {
		if sq[i].version != pg[i].version || sq[i].name != pg[i].name {
			t.Errorf("migration %d: sqlite %s, postgres %s", i, sq[i].name, pg[i].name)
		}
		a, b := splitStatements(sq[i].body), splitStatements(pg[i].body)
		if len(a) != len(b) {
			t.Errorf("%s: %d sqlite statements, %d postgres", sq[i].name, len(a), len(b))
		}
		for _, st := range b {
			for _, bad := range []string{"AUTOINCREMENT", "BLOB"} {
				if strings.Contains(st, bad) {
					t.Errorf("postgres %s uses %s", pg[i].name, bad)
				}
			}
		}
	}
	got := splitStatements("-- c\nCREATE TABLE a (x INT);\n\n  -- d\nCREATE INDEX i\n  ON a (x);\n")
	if len(got) != 2 || got[1] != "CREATE INDEX i\n  ON a (x);" {
		t.Errorf("splitStatements = %q", got)
	}
}

func BenchmarkInstallByID(b *testing.B) {
	s, _ := openTest(b)
	ctx := context.Background()
	mustWorkspace(b, s, "acme")
	for i := range 100 {
		mustInstall(b, s, "acme", fmt.Sprintf("i%d", i), nil)
	}
	in := mustInstall(b, s, "acme", "web", []string{"ghcr.io/acme/*", "docker.io/library/*"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.InstallByID(ctx, in.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestWorkspaceByID(t *testing.T) {
	s, _ := openTest(t)
	ws := mustWorkspace(t, s, "acme")
	got, err := s.WorkspaceByID(context.Background(), ws.ID)
	if err != nil || got.Name != "acme" || got.ID != ws.ID {
		t.Fatalf("WorkspaceByID = %+v, %v", got, err)
	}
	_, err = s.WorkspaceByID(context.Background(), "ws_nope")
	wantErr(t, err, ErrNotFound, "ws_nope")
}

// The network policy fields (migration 0003) round-trip through create,
// read and update, and default to the safe side.
func TestCredentialNetworkPolicy(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	mustWorkspace(t, s, "acme")
	c, err := s.CreateCredential(ctx, "acme", Credential{Name: "lan", Host: "registry.lan", Kind: "basic",
		AllowPrivateNetwork: true, RealmHosts: []string{"auth.lan", "sso.lan:8443"}}, Sealed("x"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "acme", "lan")
	if err != nil || !got.AllowPrivateNetwork || !slices.Equal(got.RealmHosts, []string{"auth.lan", "sso.lan:8443"}) {
		t.Fatalf("GetCredential = %+v, %v; want %+v", got, err, c)
	}
	off, none := false, []string{}
	u, err := s.UpdateCredential(ctx, "acme", "lan", CredentialUpdate{AllowPrivateNetwork: &off, RealmHosts: &none})
	if err != nil || u.AllowPrivateNetwork || len(u.RealmHosts) != 0 {
		t.Fatalf("UpdateCredential = %+v, %v", u, err)
	}
	if got, _ := s.GetCredential(ctx, "acme", "lan"); got.AllowPrivateNetwork || len(got.RealmHosts) != 0 {
		t.Fatalf("after update = %+v", got)
	}
	plain := mustCredential(t, s, "acme", "plain", "y")
	if plain.AllowPrivateNetwork || plain.RealmHosts != nil {
		t.Fatalf("defaults = %+v", plain)
	}
}

// A credential's kind changes only together with a new secret (the
// secret's form depends on the kind), on both dialects.
func TestCredentialKindChange(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *SQL{
		"sqlite":   func(t *testing.T) *SQL { s, _ := openTest(t); return s },
		"postgres": openPostgres, // skips without PULLGATE_TEST_POSTGRES_DSN
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			mustWorkspace(t, s, "acme")
			mustCredential(t, s, "acme", "gh", "x")
			tok := "token"
			_, err := s.UpdateCredential(ctx, "acme", "gh", CredentialUpdate{Kind: &tok})
			wantErr(t, err, ErrInvalid, "new kind needs a new secret")
			u, err := s.UpdateCredential(ctx, "acme", "gh", CredentialUpdate{Kind: &tok, Secret: Sealed("v2")})
			if err != nil || u.Kind != "token" || u.Version != 2 {
				t.Fatalf("UpdateCredential = %+v, %v", u, err)
			}
			if got, err := s.GetCredential(ctx, "acme", "gh"); err != nil || got.Kind != "token" || got.Version != 2 {
				t.Fatalf("GetCredential = %+v, %v", got, err)
			}
		})
	}
}
