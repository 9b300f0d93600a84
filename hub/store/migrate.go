package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

type migration struct {
	version int
	name    string
	body    string
}

func (s *SQL) migrationDir() string {
	if s.dialect == dialectPostgres {
		return "migrations/postgres"
	}
	return "migrations/sqlite"
}

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", name)
		}
		body, err := fs.ReadFile(migrationsFS, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, body: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// splitStatements splits a migration into statements at semicolons that end
// a line, dropping "--" comment lines. Migrations must not put such a
// semicolon inside a string literal.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			if st := strings.TrimSpace(cur.String()); st != ";" {
				out = append(out, st)
			}
			cur.Reset()
		}
	}
	if st := strings.TrimSpace(cur.String()); st != "" {
		out = append(out, st)
	}
	return out
}

// migrationLockID is the PostgreSQL advisory lock key that serialises
// concurrent migrators (several hub replicas starting at once).
const migrationLockID = 0x70756c6c67617465 // "pullgate"

// advisoryXactLock takes the PostgreSQL advisory lock id for the rest of
// tx. On SQLite the writer's BEGIN IMMEDIATE already holds the database's
// write lock.
func (s *SQL) advisoryXactLock(ctx context.Context, tx *sql.Tx, id int64) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, id)
	return err
}

// lockMigrations takes the migration lock for the rest of tx.
func (s *SQL) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if err := s.advisoryXactLock(ctx, tx, migrationLockID); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	return nil
}

func (s *SQL) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.migrationDir())
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	// Under the lock too: PostgreSQL's CREATE TABLE IF NOT EXISTS is not
	// safe against a concurrent one (both pass the check, and the loser
	// fails on pg_type's unique index), so replicas starting together on a
	// fresh database would fail here.
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, st := range splitStatements(m.body) {
				if _, err := tx.ExecContext(ctx, st); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, toNanos(now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	var latest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(ms) > 0 && latest.Int64 > int64(ms[len(ms)-1].version) {
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d)", latest.Int64, ms[len(ms)-1].version)
	}
	return nil
}
