package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestReopenPersistsAndMigrationsIdempotent(t *testing.T) {
	forEachDialect(t, testReopenPersistsAndMigrationsIdempotent)
}

func testReopenPersistsAndMigrationsIdempotent(t *testing.T, db testDB) {
	ctx := context.Background()
	s, err := db.open()
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
		s, err = db.open()
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

func TestRefusesNewerSchema(t *testing.T) { forEachDialect(t, testRefusesNewerSchema) }

func testRefusesNewerSchema(t *testing.T, db testDB) {
	s := db.mustOpen(t)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := db.open(); err == nil {
		s2.Close()
		t.Fatal("open succeeded on a database from the future")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("err = %v", err)
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
