package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// SQL is the hub's store on database/sql. It runs on SQLite
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
