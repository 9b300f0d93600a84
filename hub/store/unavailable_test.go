package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pullgate/pullgate/internal/testpg"
)

// forwarder relays a unix socket to the PostgreSQL server until cut: the
// database "goes away" for the store without stopping the shared server.
type forwarder struct {
	t      *testing.T
	path   string
	target func(ctx context.Context) (net.Conn, error)
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (f *forwarder) start() {
	f.t.Helper()
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := f.target(context.Background())
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every relayed connection.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ln.Close()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// The database going away is reported as unavailable (the API's 503), and
// the same store works again once it is back, without being reopened.
func TestPostgresUnavailableAndBack(t *testing.T) {
	dsn, _ := postgresSchema(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	network, addr := "tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if filepath.IsAbs(cfg.Host) {
		network, addr = "unix", filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port))
	}
	dir, err := os.MkdirTemp("", "pgfw") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &forwarder{t: t, path: filepath.Join(dir, ".s.PGSQL.5432"), target: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	f.start()
	t.Cleanup(f.cut)
	s, err := OpenPostgres(context.Background(), dsn+testpg.Sep(dsn)+"host="+dir+"&port=5432")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.CreateWorkspace(ctx, "before"); err != nil {
		t.Fatal(err)
	}

	f.cut()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"read", func() error { _, err := s.ListWorkspaces(ctx); return err }},
		{"write", func() error { _, err := s.CreateWorkspace(ctx, "during"); return err }},
		{"read by id", func() error { _, err := s.InstallByID(ctx, "in_x"); return err }},
	} {
		err := op.do()
		if err == nil || !IsUnavailable(err) {
			t.Fatalf("%s while the database is away: %v, want an unavailable error", op.name, err)
		}
	}

	f.start()
	ws, err := s.ListWorkspaces(ctx)
	if err != nil || len(ws) != 1 || ws[0].Name != "before" {
		t.Fatalf("after the database is back: %v %v", ws, err)
	}
}

func TestIsUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrNotFound, false},
		{fmt.Errorf("workspace %q: %w", "x", ErrConflict), false},
		{&pgconn.PgError{Code: "23505"}, false},
		{errors.New("syntax error"), false},
		{fmt.Errorf("list: %w", &pgconn.PgError{Code: "57P01"}), true},
		{fmt.Errorf("list: %w", &pgconn.PgError{Code: "08006"}), true},
		{fmt.Errorf("list: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{fmt.Errorf("x: %w", ErrUnavailable), true},
	} {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
