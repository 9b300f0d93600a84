package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pullgate/pullgate/internal/testpg"
)

// The store's tests are one conformance suite that runs on every dialect:
// each test takes a store (forEachStore) or a database it opens itself
// (forEachDialect) and runs once on SQLite and once on PostgreSQL, as
// subtests named after the dialect.

// EnvPostgres names a PostgreSQL database the store tests may use (a URL
// or key=value DSN); without it the PostgreSQL subtests are skipped. Each
// test gets a fresh schema of its own. `.ci/postgres.sh start DIR` starts
// a throwaway server and prints a DSN for it.
const EnvPostgres = "PULLGATE_TEST_POSTGRES_DSN"

// testDB is an empty database of one dialect, private to one test.
type testDB struct {
	dialect dialect
	// open opens a store on the database (migrating it); every call opens
	// another handle to the same database, as another hub process would.
	open func() (*SQL, error)
	// raw opens the database without the store: no migrations run.
	raw func() (*sql.DB, error)
}

// mustOpen opens a store on db and closes it when the test ends.
func (db testDB) mustOpen(t testing.TB) *SQL {
	t.Helper()
	s, err := db.open()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustRaw opens the database without the store and closes it when the
// test ends.
func (db testDB) mustRaw(t testing.TB) *sql.DB {
	t.Helper()
	d, err := db.raw()
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// forEachDialect runs test once per dialect, each on a fresh database
// (the PostgreSQL subtest is skipped without EnvPostgres).
func forEachDialect(t *testing.T, test func(t *testing.T, db testDB)) {
	t.Helper()
	for _, d := range []struct {
		name string
		new  func(t *testing.T) testDB
	}{
		{"sqlite", sqliteDB},
		{"postgres", postgresDB},
	} {
		t.Run(d.name, func(t *testing.T) { test(t, d.new(t)) })
	}
}

// forEachStore runs test once per dialect, each on a store opened on a
// fresh database.
func forEachStore(t *testing.T, test func(t *testing.T, s *SQL)) {
	t.Helper()
	forEachDialect(t, func(t *testing.T, db testDB) { test(t, db.mustOpen(t)) })
}

// sqliteDB is a database file in the test's temporary directory.
func sqliteDB(t *testing.T) testDB {
	path := filepath.Join(t.TempDir(), "hub.db")
	return testDB{
		dialect: dialectSQLite,
		open:    func() (*SQL, error) { return OpenSQLite(context.Background(), path) },
		raw:     func() (*sql.DB, error) { return sql.Open("sqlite", "file:"+path) },
	}
}

// postgresDB is a schema of its own in the EnvPostgres database, dropped
// when the test ends.
func postgresDB(t *testing.T) testDB {
	dsn, _ := postgresSchema(t)
	return testDB{
		dialect: dialectPostgres,
		open:    func() (*SQL, error) { return OpenPostgres(context.Background(), dsn) },
		raw:     func() (*sql.DB, error) { return sql.Open("pgx", dsn) },
	}
}

// postgresSchema creates a schema for the test and returns a DSN that
// uses it, and its name.
func postgresSchema(t *testing.T) (string, string) {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skipf("%s not set", EnvPostgres)
	}
	schema := "t_" + newID("")
	return testpg.Schema(t, dsn, schema), schema
}
