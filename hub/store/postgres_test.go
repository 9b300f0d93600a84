package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
)

// EnvPostgres names a PostgreSQL database the store tests may use (a URL
// or key=value DSN); the tests that need one are skipped without it. Each
// test gets a fresh schema of its own.
const EnvPostgres = "PULLGATE_TEST_POSTGRES_DSN"

// openPostgres opens the store in a new schema of the test database and
// drops the schema afterwards.
func openPostgres(t *testing.T) *SQL {
	t.Helper()
	dsn, _ := postgresSchema(t)
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresSchema creates a schema for the test and returns a DSN that
// uses it, and its name.
func postgresSchema(t *testing.T) (string, string) {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skipf("%s not set", EnvPostgres)
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := "t_" + newID("")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	return dsn + fmt.Sprintf("%ssearch_path=%s", sep(dsn), schema), schema
}

func TestPostgresMigration0004(t *testing.T) {
	dsn, _ := postgresSchema(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	testMigration0004(t, db, &SQL{dialect: dialectPostgres}, func() (*SQL, error) { return OpenPostgres(context.Background(), dsn) })
}

// sep is what joins another parameter to dsn.
func sep(dsn string) string {
	switch {
	case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
		return " "
	case strings.Contains(dsn, "?"):
		return "&"
	}
	return "?"
}

// The cluster binding, namespace ownership, join-token and key-proposal
// rules hold on PostgreSQL too (row locks instead of SQLite's single
// writer).
func TestPostgresClusterRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *SQL)
	}{
		{"delete with installs", func(t *testing.T, s *SQL) { testDeleteClusterWithInstalls(t, s) }},
		{"install binding", func(t *testing.T, s *SQL) { testInstallClusterBinding(t, s) }},
		{"namespace race", func(t *testing.T, s *SQL) { testSharedNamespaceRace(t, s) }},
		{"join token limits", func(t *testing.T, s *SQL) { testJoinTokenLimits(t, s) }},
		{"one-time token race", func(t *testing.T, s *SQL) { testEnrolOneTimeTokenRace(t, s) }},
		{"jwks proposal", func(t *testing.T, s *SQL) { testClusterJWKSProposal(t, s) }},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, openPostgres(t)) })
	}
}
