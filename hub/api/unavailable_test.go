package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pullgate/pullgate/hub/store"
)

// downStore is the store while PostgreSQL shuts down under it.
type downStore struct{ Store }

var errDown = fmt.Errorf("list workspaces: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01",
	Message: "terminating connection due to administrator command"})

func (downStore) ListWorkspaces(context.Context) ([]store.Workspace, error) { return nil, errDown }
func (downStore) CreateWorkspace(context.Context, string) (store.Workspace, error) {
	return store.Workspace{}, errDown
}

// An unreachable database is a 503 that says so, not a 500, and the
// driver's text stays in the log.
func TestDatabaseUnavailable(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Store = downStore{d.Store} })
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/workspaces", ""},
		{http.MethodPost, "/api/v1/workspaces", `{"name":"acme"}`},
	} {
		code, body := e.do(c.method, c.path, c.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unavailable") || strings.Contains(body, "administrator") {
			t.Fatalf("%s %s: %d %s, want 503 naming the database", c.method, c.path, code, body)
		}
	}
}
