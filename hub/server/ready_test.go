package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
)

// /readyz is public: a store error (on PostgreSQL it names the database's
// host, user and socket path) goes to the log, not to the anonymous caller.
func TestReadyzKeepsStoreErrorsToTheLog(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := readyHandler(st, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, tc := range []struct {
		name   string
		closed bool
		code   int
		body   string
	}{
		{"ready", false, 200, "ok\n"},
		{"store down", true, 503, "not ready: store\n"},
	} {
		if tc.closed {
			st.Close()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tc.code || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.name, rec.Code, rec.Body, tc.code, tc.body)
		}
	}
	if !strings.Contains(logs.String(), "database is closed") {
		t.Errorf("log %q: want the store's error", logs.String())
	}
}
