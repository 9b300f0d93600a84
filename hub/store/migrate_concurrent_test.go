package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Several hub replicas that start at the same moment on one fresh database
// must all start, and each migration must be applied exactly once: a
// migration's statements are not idempotent (plain CREATE TABLE, ALTER
// TABLE ADD COLUMN), so a second application fails with a duplicate-object
// error and that replica would not start.
func TestReplicasMigrateTogether(t *testing.T) {
	const replicas, rounds = 5, 4
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			forEachDialect(t, func(t *testing.T, db testDB) {
				stores, errs := openTogether(db, replicas)
				for i, err := range errs {
					if err != nil {
						t.Errorf("replica %d did not start: %v", i, err)
					}
				}
				for _, s := range stores {
					if s != nil {
						t.Cleanup(func() { s.Close() })
					}
				}
				if t.Failed() {
					return
				}
				checkMigratedOnce(t, stores[0])
				// Every replica works on the one schema.
				for i, s := range stores {
					if _, err := s.CreateWorkspace(context.Background(), fmt.Sprintf("ws-%d", i)); err != nil {
						t.Fatalf("replica %d: create workspace: %v", i, err)
					}
				}
			})
		})
	}
}

// openTogether opens n stores on db from n goroutines released at once.
func openTogether(db testDB, n int) ([]*SQL, []error) {
	stores := make([]*SQL, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = db.open()
		})
	}
	close(start)
	wg.Wait()
	return stores, errs
}

// checkMigratedOnce checks that schema_migrations lists every migration of
// the binary once.
func checkMigratedOnce(t *testing.T, s *SQL) {
	t.Helper()
	ms, err := loadMigrations(s.migrationDir())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations = %v; want the %d versions of the binary once each", got, len(ms))
	}
	for i, m := range ms {
		if got[i] != m.version {
			t.Fatalf("schema_migrations = %v; want version %d at %d", got, m.version, i)
		}
	}
}

// A replica that starts while another is in the middle of a migration
// waits for it: it neither applies that migration a second time nor starts
// on a half-migrated schema. If the other replica dies mid-migration (its
// transaction rolls back), the waiting one applies the migration itself.
func TestReplicaStartsDuringMigration(t *testing.T) {
	for _, tc := range []struct {
		name string
		// commit: the first replica finishes its migration; otherwise it
		// dies and its transaction is rolled back.
		commit bool
	}{
		{"other finishes", true},
		{"other dies", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := postgresDB(t)
			testReplicaStartsDuringMigration(t, db, tc.commit)
		})
	}
}

func testReplicaStartsDuringMigration(t *testing.T, db testDB, commit bool) {
	ctx := context.Background()
	raw := db.mustRaw(t)
	ms, err := loadMigrations("migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	// The first replica, by hand: it holds the migration lock and has run
	// half of migration 0001 when the second one starts.
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	sts := splitStatements(ms[0].body)
	for _, st := range sts[:len(sts)/2] {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			t.Fatal(err)
		}
	}

	type opened struct {
		s   *SQL
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := db.open()
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		if o.s != nil {
			o.s.Close()
		}
		t.Fatalf("second replica started while the first held the migration lock: %v", o.err)
	case <-time.After(500 * time.Millisecond):
	}

	if commit {
		for _, st := range sts[len(sts)/2:] {
			if _, err := tx.ExecContext(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, ms[0].version); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	} else if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	var o opened
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("second replica still waiting 30 s after the first let go of the lock")
	}
	if o.err != nil {
		t.Fatalf("second replica did not start: %v", o.err)
	}
	defer o.s.Close()
	checkMigratedOnce(t, o.s)
	var appliedAt int64
	if err := o.s.db.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = $1`, ms[0].version).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	// The first replica wrote 0; the second writes the time it applied it.
	if mine := appliedAt != 0; mine == commit {
		t.Fatalf("migration %s applied_at = %d: applied by the wrong replica (first committed: %v)", ms[0].name, appliedAt, commit)
	}
	if _, err := o.s.CreateWorkspace(ctx, "after"); err != nil {
		t.Fatalf("create workspace after migrating: %v", err)
	}
}
