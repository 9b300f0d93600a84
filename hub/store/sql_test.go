package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

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

// TestConcurrent runs writers and readers side by side; SQLite must not
// report "database is locked".
func TestConcurrent(t *testing.T) { forEachStore(t, testConcurrent) }

func testConcurrent(t *testing.T, s *SQL) {
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

// TestTwoHandles opens the same database twice (as two processes would)
// and writes through both: busy_timeout and BEGIN IMMEDIATE must keep
// SQLite from failing with "database is locked"; no update may be lost.
func TestTwoHandles(t *testing.T) { forEachDialect(t, testTwoHandles) }

func testTwoHandles(t *testing.T, db testDB) {
	s1, s2 := db.mustOpen(t), db.mustOpen(t)
	ctx := context.Background()
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
