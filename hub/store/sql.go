package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"               // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrInvalid is returned when an argument is malformed, for example a name
// that does not match the naming rules. The wrapping error names the field.
var ErrInvalid = errors.New("invalid")

// namePattern is the rule for workspace, credential and install names.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

// ValidName reports whether s is acceptable as a workspace, credential or
// install name: 1 to 64 lowercase letters, digits, '.', '_' or '-', starting
// and ending with a letter or digit.
func ValidName(s string) bool { return namePattern.MatchString(s) }

func checkName(field, name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("%w: %s name %q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", ErrInvalid, field, name)
}

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// SQL is the Store implementation on database/sql. It runs on SQLite
// (OpenSQLite) and PostgreSQL (OpenPostgres). Queries are written with '?'
// placeholders and rebound to $n for PostgreSQL.
type SQL struct {
	dialect dialect
	// db takes writes and read-modify-write transactions. On SQLite it has
	// exactly one connection, so writers queue in Go instead of fighting
	// over the database lock.
	db *sql.DB
	// rdb takes plain reads. On SQLite it is a separate pool of read-only
	// connections (WAL lets them run alongside the writer); on PostgreSQL
	// it is db.
	rdb *sql.DB

	// Prepared hot-path statements (on rdb).
	stmtInstallByID *sql.Stmt
	stmtCredsByWSID *sql.Stmt
}

var _ Store = (*SQL)(nil)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// sqlitePragmas are applied by the driver to every new connection.
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// OpenSQLite opens (creating if needed) the SQLite database at path and
// brings its schema up to date. A new database file is created with mode
// 0600 and its parent directory with 0700; existing files keep their mode.
// The database runs in WAL mode with one writer connection and a pool of
// read-only connections.
func OpenSQLite(ctx context.Context, path string) (*SQL, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite: %w: empty path", ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite %s: create directory: %w", path, err)
	}
	// Create the file ourselves so that it gets 0600 regardless of how
	// SQLite would create it. SQLite gives the -wal and -shm files the same
	// permissions as the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	base := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?"
	for _, p := range sqlitePragmas {
		base += "_pragma=" + url.QueryEscape(p) + "&"
	}
	// The writer sets WAL (persistent in the file) and starts transactions
	// with BEGIN IMMEDIATE so that a read-then-write transaction never has to
	// upgrade its lock (which fails with SQLITE_BUSY under concurrency with
	// other processes).
	wdsn := base + "_pragma=" + url.QueryEscape("journal_mode(WAL)") + "&_txlock=immediate"
	rdsn := base + "_pragma=" + url.QueryEscape("query_only(1)")

	wdb, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	// Open the writer first: it switches the file to WAL before any reader
	// connects.
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	rdb, err := sql.Open("sqlite", rdsn)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxIdleTime(5 * time.Minute)

	s := &SQL{dialect: dialectSQLite, db: wdb, rdb: rdb}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

// OpenPostgres connects to PostgreSQL (pgx driver; dsn is a URL or
// key=value connection string) and brings the schema up to date.
func OpenPostgres(ctx context.Context, dsn string) (*SQL, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &SQL{dialect: dialectPostgres, db: db, rdb: db}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

func (s *SQL) init(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	var err error
	if s.stmtInstallByID, err = s.rdb.PrepareContext(ctx, s.q(`SELECT `+installSelect("i")+` FROM installs i WHERE i.id = ?`)); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if s.stmtCredsByWSID, err = s.rdb.PrepareContext(ctx, s.q(`SELECT `+credentialCols+` FROM credentials WHERE workspace_id = ? ORDER BY name`)); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// Close releases the database connections.
func (s *SQL) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stmtInstallByID, s.stmtCredsByWSID} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.rdb != nil && s.rdb != s.db {
		errs = append(errs, s.rdb.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Migrations

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

func (s *SQL) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.migrationDir())
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.dialect == dialectPostgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
					return err
				}
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

// ---------------------------------------------------------------------------
// Helpers

// q adapts a query written with '?' placeholders to the dialect.
func (s *SQL) q(query string) string {
	if s.dialect == dialectPostgres {
		return rebind(query)
	}
	return query
}

// rebind turns '?' placeholders into $1..$n, leaving quoted text alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// forUpdate is appended to a SELECT in a read-modify-write transaction. On
// SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
func (s *SQL) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

func (s *SQL) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type rowScanner interface {
	Scan(dest ...any) error
}

func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}

func now() time.Time { return time.Now().UTC() }

// toNanos converts t to unix nanoseconds, clamping times outside the int64
// range (years 1678..2262).
func toNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// wrap adds what was being done to unexpected errors. Errors that already
// describe themselves (not found, conflict, invalid) pass unchanged.
func wrap(err error, format string, args ...any) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

func workspaceNotFound(name string) error {
	return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
}

// workspaceID resolves a workspace name.
func (s *SQL) workspaceID(ctx context.Context, q queryRower, name string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, s.q(`SELECT id FROM workspaces WHERE name = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", workspaceNotFound(name)
	}
	return id, err
}

// ---------------------------------------------------------------------------
// Workspaces

// CreateWorkspace creates a workspace.
func (s *SQL) CreateWorkspace(ctx context.Context, name string) (Workspace, error) {
	if err := checkName("workspace", name); err != nil {
		return Workspace{}, err
	}
	w := Workspace{ID: newID("ws_"), Name: name, CreatedAt: now()}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)`),
		w.ID, w.Name, toNanos(w.CreatedAt))
	if isUniqueViolation(err) {
		return Workspace{}, fmt.Errorf("workspace %q: %w", name, ErrConflict)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("create workspace %q: %w", name, err)
	}
	return w, nil
}

// GetWorkspace returns the named workspace.
func (s *SQL) GetWorkspace(ctx context.Context, name string) (Workspace, error) {
	return s.workspaceBy(ctx, "name", name)
}

func (s *SQL) WorkspaceByID(ctx context.Context, id string) (Workspace, error) {
	return s.workspaceBy(ctx, "id", id)
}

// workspaceBy reads one workspace by a unique column (name or id).
func (s *SQL) workspaceBy(ctx context.Context, col, v string) (Workspace, error) {
	var w Workspace
	var created int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, name, created_at FROM workspaces WHERE `+col+` = ?`), v).
		Scan(&w.ID, &w.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		if col == "id" {
			return Workspace{}, fmt.Errorf("workspace id %q: %w", v, ErrNotFound)
		}
		return Workspace{}, workspaceNotFound(v)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("get workspace %q: %w", v, err)
	}
	w.CreatedAt = fromNanos(created)
	return w, nil
}

// ListWorkspaces returns all workspaces ordered by name.
func (s *SQL) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, name, created_at FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	defer rows.Close()
	var out []Workspace
	for rows.Next() {
		var w Workspace
		var created int64
		if err := rows.Scan(&w.ID, &w.Name, &created); err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		w.CreatedAt = fromNanos(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return out, nil
}

// DeleteWorkspace removes the workspace with its credentials (and their
// secrets), its installs and its single-workspace clusters (with their
// nodes, join token and service-account keys), in one transaction, and
// returns what it removed. While the workspace has installs or clusters it
// refuses with a *WorkspaceInUseError unless force is set. Audit events
// are kept.
func (s *SQL) DeleteWorkspace(ctx context.Context, name string, force bool) (WorkspaceContents, error) {
	var out WorkspaceContents
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The row lock serialises this with CreateCluster, which checks
		// the workspace in its own transaction: no cluster is created for
		// a workspace being deleted.
		var wsID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM workspaces WHERE name = ?`+s.forUpdate()), name).Scan(&wsID)
		if errors.Is(err, sql.ErrNoRows) {
			return workspaceNotFound(name)
		}
		if err != nil {
			return err
		}
		if out, err = s.workspaceContents(ctx, tx, wsID); err != nil {
			return err
		}
		if (len(out.Installs) > 0 || len(out.Clusters) > 0) && !force {
			return &WorkspaceInUseError{Workspace: name, Contents: out}
		}
		// Installs first: they reference the clusters. Installs of other
		// workspaces are never bound to this workspace's clusters
		// (bindCluster). Nodes go with their clusters (ON DELETE CASCADE),
		// credentials and their secrets with the workspace.
		for _, q := range []string{`DELETE FROM installs WHERE workspace_id = ?`, `DELETE FROM clusters WHERE workspace_id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), wsID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM workspaces WHERE id = ?`), wsID)
		return err
	})
	if err != nil {
		return WorkspaceContents{}, wrap(err, "delete workspace %q", name)
	}
	return out, nil
}

// workspaceContents lists what a workspace owns, each list by name.
func (s *SQL) workspaceContents(ctx context.Context, tx *sql.Tx, wsID string) (WorkspaceContents, error) {
	var out WorkspaceContents
	names := func(query string) ([]string, error) {
		rows, err := tx.QueryContext(ctx, s.q(query), wsID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var ns []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			ns = append(ns, n)
		}
		return ns, rows.Err()
	}
	var err error
	if out.Installs, err = names(`SELECT name FROM installs WHERE workspace_id = ? ORDER BY name`); err != nil {
		return out, err
	}
	if out.Credentials, err = names(`SELECT name FROM credentials WHERE workspace_id = ? ORDER BY name`); err != nil {
		return out, err
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT c.name, (SELECT COUNT(*) FROM nodes n WHERE n.cluster_id = c.id)
		FROM clusters c WHERE c.workspace_id = ? ORDER BY c.name`), wsID)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var c WorkspaceCluster
		if err := rows.Scan(&c.Name, &c.Nodes); err != nil {
			return out, err
		}
		out.Clusters = append(out.Clusters, c)
	}
	return out, rows.Err()
}

// ---------------------------------------------------------------------------
// Credentials

const credentialCols = `id, workspace_id, name, host, endpoint, kind, username, insecure, enabled, version, created_at, updated_at, allow_private_network, realm_hosts`

func scanCredential(r rowScanner) (Credential, error) {
	var c Credential
	var created, updated int64
	var realms string
	err := r.Scan(&c.ID, &c.WorkspaceID, &c.Name, &c.Host, &c.Endpoint, &c.Kind, &c.Username,
		&c.Insecure, &c.Enabled, &c.Version, &created, &updated, &c.AllowPrivateNetwork, &realms)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	c.RealmHosts = splitList(realms)
	return c, err
}

func credentialNotFound(workspace, name string) error {
	return fmt.Errorf("credential %q in workspace %q: %w", name, workspace, ErrNotFound)
}

// CreateCredential stores a credential's metadata and its sealed secret as
// version 1. c.ID, c.WorkspaceID, c.Version and the timestamps are set by
// the store; c.Enabled is stored as given.
func (s *SQL) CreateCredential(ctx context.Context, workspace string, c Credential, secret Sealed) (Credential, error) {
	if err := checkName("credential", c.Name); err != nil {
		return Credential{}, err
	}
	if c.Host == "" {
		return Credential{}, fmt.Errorf("%w: credential %q: host must not be empty", ErrInvalid, c.Name)
	}
	if c.Kind == "" {
		return Credential{}, fmt.Errorf("%w: credential %q: kind must not be empty", ErrInvalid, c.Name)
	}
	if len(secret) == 0 {
		return Credential{}, fmt.Errorf("%w: credential %q: secret must not be empty", ErrInvalid, c.Name)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		c.ID = newID("cred_")
		c.WorkspaceID = wsID
		c.Version = 1
		c.CreatedAt = now()
		c.UpdatedAt = c.CreatedAt
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.WorkspaceID, c.Name, c.Host, c.Endpoint, c.Kind, c.Username, c.Insecure, c.Enabled, c.Version,
			toNanos(c.CreatedAt), toNanos(c.UpdatedAt), c.AllowPrivateNetwork, strings.Join(c.RealmHosts, ","))
		if isUniqueViolation(err) {
			return fmt.Errorf("credential %q in workspace %q: %w", c.Name, workspace, ErrConflict)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO credential_secrets (credential_id, version, sealed, created_at) VALUES (?, ?, ?, ?)`),
			c.ID, c.Version, []byte(secret), toNanos(c.CreatedAt))
		return err
	})
	if err != nil {
		return Credential{}, wrap(err, "create credential %q in workspace %q", c.Name, workspace)
	}
	return c, nil
}

// GetCredential returns a credential's metadata.
func (s *SQL) GetCredential(ctx context.Context, workspace, name string) (Credential, error) {
	c, err := scanCredential(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+prefixCols("c.", credentialCols)+`
		FROM credentials c JOIN workspaces w ON w.id = c.workspace_id
		WHERE w.name = ? AND c.name = ?`), workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.workspaceID(ctx, s.rdb, workspace); err != nil {
			return Credential{}, wrap(err, "get credential %q in workspace %q", name, workspace)
		}
		return Credential{}, credentialNotFound(workspace, name)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("get credential %q in workspace %q: %w", name, workspace, err)
	}
	return c, nil
}

// ListCredentials returns the workspace's credentials ordered by name.
func (s *SQL) ListCredentials(ctx context.Context, workspace string) ([]Credential, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, wrap(err, "list credentials in workspace %q", workspace)
	}
	cs, err := s.CredentialsByWorkspaceID(ctx, wsID)
	if err != nil {
		return nil, fmt.Errorf("list credentials in workspace %q: %w", workspace, err)
	}
	return cs, nil
}

// CredentialsByWorkspaceID returns the workspace's credentials ordered by
// name; an unknown workspace ID yields an empty list.
func (s *SQL) CredentialsByWorkspaceID(ctx context.Context, workspaceID string) ([]Credential, error) {
	rows, err := s.stmtCredsByWSID.QueryContext(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
	}
	return out, nil
}

// UpdateCredential applies u. A non-nil Secret is stored as a new version
// (older versions are kept). UpdatedAt is always set.
func (s *SQL) UpdateCredential(ctx context.Context, workspace, name string, u CredentialUpdate) (Credential, error) {
	if u.Secret != nil && len(u.Secret) == 0 {
		return Credential{}, fmt.Errorf("%w: credential %q: secret must not be empty", ErrInvalid, name)
	}
	var c Credential
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		c, err = scanCredential(tx.QueryRowContext(ctx, s.q(`SELECT `+credentialCols+` FROM credentials WHERE workspace_id = ? AND name = ?`+s.forUpdate()), wsID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return credentialNotFound(workspace, name)
		}
		if err != nil {
			return err
		}
		if u.Kind != nil && *u.Kind != c.Kind {
			if u.Secret == nil {
				return fmt.Errorf("%w: credential %q: a new kind needs a new secret", ErrInvalid, name)
			}
			c.Kind = *u.Kind
		}
		if u.Username != nil {
			c.Username = *u.Username
		}
		if u.Endpoint != nil {
			c.Endpoint = *u.Endpoint
		}
		if u.Insecure != nil {
			c.Insecure = *u.Insecure
		}
		if u.Enabled != nil {
			c.Enabled = *u.Enabled
		}
		if u.AllowPrivateNetwork != nil {
			c.AllowPrivateNetwork = *u.AllowPrivateNetwork
		}
		if u.RealmHosts != nil {
			c.RealmHosts = *u.RealmHosts
		}
		c.UpdatedAt = now()
		if u.Secret != nil {
			c.Version++
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO credential_secrets (credential_id, version, sealed, created_at) VALUES (?, ?, ?, ?)`),
				c.ID, c.Version, []byte(u.Secret), toNanos(c.UpdatedAt)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE credentials SET kind = ?, username = ?, endpoint = ?, insecure = ?, enabled = ?, version = ?, updated_at = ?,
			allow_private_network = ?, realm_hosts = ? WHERE id = ?`),
			c.Kind, c.Username, c.Endpoint, c.Insecure, c.Enabled, c.Version, toNanos(c.UpdatedAt),
			c.AllowPrivateNetwork, strings.Join(c.RealmHosts, ","), c.ID)
		return err
	})
	if err != nil {
		return Credential{}, wrap(err, "update credential %q in workspace %q", name, workspace)
	}
	return c, nil
}

// DeleteCredential removes a credential and all its secret versions.
func (s *SQL) DeleteCredential(ctx context.Context, workspace, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM credentials WHERE workspace_id = ? AND name = ?`), wsID, name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return credentialNotFound(workspace, name)
		}
		return nil
	})
	return wrap(err, "delete credential %q in workspace %q", name, workspace)
}

// CredentialSecret returns the sealed secret of the given version.
func (s *SQL) CredentialSecret(ctx context.Context, credentialID string, version int) (Sealed, error) {
	var b []byte
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT sealed FROM credential_secrets WHERE credential_id = ? AND version = ?`), credentialID, version).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("credential %s secret version %d: %w", credentialID, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("credential %s secret version %d: %w", credentialID, version, err)
	}
	return Sealed(b), nil
}

// ---------------------------------------------------------------------------
// Installs

// installCols are the installs table's columns as written; reads add the
// name of the bound cluster (installSelect).
const installCols = `id, workspace_id, name, cluster_id, namespace, service_account, repos, enabled, generation, created_at, updated_at`

// installSelect is the select list of an install read through table alias
// a: its columns, then the name of the cluster it is bound to (empty when
// unbound).
func installSelect(a string) string {
	return prefixCols(a+".", installCols) + `, COALESCE((SELECT c.name FROM clusters c WHERE c.id = ` + a + `.cluster_id), '')`
}

func scanInstall(r rowScanner) (Install, error) {
	var in Install
	var repos string
	var clusterID sql.NullString
	var created, updated int64
	if err := r.Scan(&in.ID, &in.WorkspaceID, &in.Name, &clusterID, &in.Namespace, &in.ServiceAccount,
		&repos, &in.Enabled, &in.Generation, &created, &updated, &in.Cluster); err != nil {
		return Install{}, err
	}
	in.ClusterID = clusterID.String
	if err := json.Unmarshal([]byte(repos), &in.Repos); err != nil {
		return Install{}, fmt.Errorf("install %s: decode repos: %w", in.ID, err)
	}
	in.CreatedAt, in.UpdatedAt = fromNanos(created), fromNanos(updated)
	return in, nil
}

func encodeRepos(repos []string) (string, error) {
	b, err := json.Marshal(repos)
	return string(b), err
}

func installNotFound(workspace, name string) error {
	return fmt.Errorf("install %q in workspace %q: %w", name, workspace, ErrNotFound)
}

// prefixCols qualifies a comma-separated column list with a table alias.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}

// CreateInstall creates an install with Generation 1. in.ID,
// in.WorkspaceID, in.Generation and the timestamps are set by the store.
func (s *SQL) CreateInstall(ctx context.Context, workspace string, in Install) (Install, error) {
	if err := checkName("install", in.Name); err != nil {
		return Install{}, err
	}
	in.Repos = slices.Clone(in.Repos)
	repos, err := encodeRepos(in.Repos)
	if err != nil {
		return Install{}, fmt.Errorf("create install %q in workspace %q: %w", in.Name, workspace, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		in.ClusterID = ""
		if in.Cluster != "" {
			if in.ClusterID, err = s.bindCluster(ctx, tx, wsID, in.Cluster, in.Namespace); err != nil {
				return err
			}
		}
		in.ID = newID("inst_")
		in.WorkspaceID = wsID
		in.Generation = 1
		in.CreatedAt = now()
		in.UpdatedAt = in.CreatedAt
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO installs (`+installCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			in.ID, in.WorkspaceID, in.Name, nullable(in.ClusterID), in.Namespace, in.ServiceAccount, repos, in.Enabled,
			in.Generation, toNanos(in.CreatedAt), toNanos(in.UpdatedAt))
		if isUniqueViolation(err) {
			return fmt.Errorf("install %q in workspace %q: %w", in.Name, workspace, ErrConflict)
		}
		return err
	})
	if err != nil {
		return Install{}, wrap(err, "create install %q in workspace %q", in.Name, workspace)
	}
	return in, nil
}

// GetInstall returns the named install.
func (s *SQL) GetInstall(ctx context.Context, workspace, name string) (Install, error) {
	in, err := scanInstall(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+installSelect("i")+`
		FROM installs i JOIN workspaces w ON w.id = i.workspace_id
		WHERE w.name = ? AND i.name = ?`), workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.workspaceID(ctx, s.rdb, workspace); err != nil {
			return Install{}, wrap(err, "get install %q in workspace %q", name, workspace)
		}
		return Install{}, installNotFound(workspace, name)
	}
	if err != nil {
		return Install{}, fmt.Errorf("get install %q in workspace %q: %w", name, workspace, err)
	}
	return in, nil
}

// InstallByID returns the install with the given ID.
func (s *SQL) InstallByID(ctx context.Context, id string) (Install, error) {
	in, err := scanInstall(s.stmtInstallByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Install{}, fmt.Errorf("install %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Install{}, fmt.Errorf("install %s: %w", id, err)
	}
	return in, nil
}

// ListInstalls returns the workspace's installs ordered by name.
func (s *SQL) ListInstalls(ctx context.Context, workspace string) ([]Install, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, wrap(err, "list installs in workspace %q", workspace)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+installSelect("i")+` FROM installs i WHERE i.workspace_id = ? ORDER BY i.name`), wsID)
	if err != nil {
		return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
	}
	return out, nil
}

// UpdateInstall applies u. Generation is bumped (once) when the install
// goes from enabled to disabled or when its repo list changes; enabling
// does not bump it. UpdatedAt is always set.
func (s *SQL) UpdateInstall(ctx context.Context, workspace, name string, u InstallUpdate) (Install, error) {
	var in Install
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		in, err = scanInstall(tx.QueryRowContext(ctx, s.q(`SELECT `+installSelect("i")+` FROM installs i WHERE i.workspace_id = ? AND i.name = ?`+s.forUpdate()), wsID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return installNotFound(workspace, name)
		}
		if err != nil {
			return err
		}
		bump := false
		if u.Enabled != nil {
			if in.Enabled && !*u.Enabled {
				bump = true
			}
			in.Enabled = *u.Enabled
		}
		if u.Repos != nil {
			if !slices.Equal(in.Repos, *u.Repos) {
				bump = true
			}
			in.Repos = slices.Clone(*u.Repos)
		}
		rebind, err := s.applyBinding(ctx, tx, wsID, &in, u)
		if err != nil {
			return err
		}
		if bump || rebind {
			in.Generation++
		}
		in.UpdatedAt = now()
		repos, err := encodeRepos(in.Repos)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE installs SET repos = ?, enabled = ?, generation = ?, updated_at = ?,
			cluster_id = ?, namespace = ?, service_account = ? WHERE id = ?`),
			repos, in.Enabled, in.Generation, toNanos(in.UpdatedAt),
			nullable(in.ClusterID), in.Namespace, in.ServiceAccount, in.ID)
		return err
	})
	if err != nil {
		return Install{}, wrap(err, "update install %q in workspace %q", name, workspace)
	}
	return in, nil
}

// DeleteInstall removes an install.
func (s *SQL) DeleteInstall(ctx context.Context, workspace, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM installs WHERE workspace_id = ? AND name = ?`), wsID, name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return installNotFound(workspace, name)
		}
		return nil
	})
	return wrap(err, "delete install %q in workspace %q", name, workspace)
}

// ---------------------------------------------------------------------------
// Signing keys

// AddSigningKey stores a signing key. A zero CreatedAt is set to now.
func (s *SQL) AddSigningKey(ctx context.Context, k SigningKey) error {
	switch {
	case k.KID == "":
		return fmt.Errorf("%w: signing key: kid must not be empty", ErrInvalid)
	case len(k.Public) == 0:
		return fmt.Errorf("%w: signing key %q: public key must not be empty", ErrInvalid, k.KID)
	case len(k.Private) == 0:
		return fmt.Errorf("%w: signing key %q: private key must not be empty", ErrInvalid, k.KID)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, public_key, private_key, created_at) VALUES (?, ?, ?, ?)`),
		k.KID, k.Public, []byte(k.Private), toNanos(created))
	if isUniqueViolation(err) {
		return fmt.Errorf("signing key %q: %w", k.KID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add signing key %q: %w", k.KID, err)
	}
	return nil
}

// ListSigningKeys returns all signing keys, oldest first.
func (s *SQL) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT kid, public_key, private_key, created_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var priv []byte
		var created int64
		if err := rows.Scan(&k.KID, &k.Public, &priv, &created); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.Private = Sealed(priv)
		k.CreatedAt = fromNanos(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Audit

// Audit query limits.
const (
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 10000
)

const auditCols = `id, ts, workspace, install, cluster, node, client_addr, upstream, repository, ref, kind, method, bytes, status, duration_ns, reason, event_count, cache`

// AppendAudit stores events in one transaction. IDs are assigned by the
// store (e.ID is ignored); a zero Time is set to now.
func (s *SQL) AppendAudit(ctx context.Context, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q(`INSERT INTO audit_events (`+strings.TrimPrefix(auditCols, "id, ")+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer st.Close()
		t0 := now()
		for _, e := range events {
			ts := e.Time
			if ts.IsZero() {
				ts = t0
			}
			count := max(e.Count, 1)
			if _, err := st.ExecContext(ctx, toNanos(ts), e.Workspace, e.Install, e.Cluster, e.Node, e.ClientAddr,
				e.Upstream, e.Repository, e.Reference, e.Kind, e.Method, e.Bytes, e.Status, int64(e.Duration), e.Reason, count, e.Cache); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d audit events: %w", len(events), err)
	}
	return nil
}

// QueryAudit returns events matching q in ID order. Limit defaults to
// DefaultAuditLimit and is capped at MaxAuditLimit.
func (s *SQL) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var where []string
	var args []any
	if q.Workspace != "" {
		where = append(where, "workspace = ?")
		args = append(args, q.Workspace)
	}
	if q.Install != "" {
		where = append(where, "install = ?")
		args = append(args, q.Install)
	}
	if !q.Since.IsZero() {
		where = append(where, "ts >= ?")
		args = append(args, toNanos(q.Since))
	}
	if q.AfterID > 0 {
		where = append(where, "id > ?")
		args = append(args, q.AfterID)
	}
	if q.Refused {
		where = append(where, "reason <> ''")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	query := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit)

	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var ts, dur int64
		if err := rows.Scan(&e.ID, &ts, &e.Workspace, &e.Install, &e.Cluster, &e.Node, &e.ClientAddr,
			&e.Upstream, &e.Repository, &e.Reference, &e.Kind, &e.Method, &e.Bytes, &e.Status, &dur, &e.Reason, &e.Count, &e.Cache); err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		e.Time = fromNanos(ts)
		e.Duration = time.Duration(dur)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

// DeleteAuditBefore deletes up to limit events older than before, oldest
// first. Callers loop in batches so that one retention pass never holds a
// long write transaction (SQLite has one writer).
func (s *SQL) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete audit events: %w: limit %d", ErrInvalid, limit)
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE ts < ? ORDER BY ts LIMIT ?)`),
		toNanos(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	return n, nil
}

// splitList reads a comma-separated column; "" is no entries.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
