// Package testpg gives a test a PostgreSQL schema of its own in a shared
// database (PULLGATE_TEST_POSTGRES_DSN), so tests never see each other's
// tables.
package testpg

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create the schema
)

// Schema creates the schema name in the database at dsn, dropped when the
// test ends, and returns a DSN that uses it.
func Schema(t testing.TB, dsn, name string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+name+" CASCADE") })
	return dsn + fmt.Sprintf("%ssearch_path=%s", Sep(dsn), name)
}

// Sep is what joins another parameter to dsn.
func Sep(dsn string) string {
	switch {
	case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
		return " "
	case strings.Contains(dsn, "?"):
		return "&"
	}
	return "?"
}
