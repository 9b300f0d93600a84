package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

const testAdmin = "admin-token-for-tests"

type checkCall struct {
	cred   store.Credential
	secret credential.Secret
	repo   string
}

type testEnv struct {
	t       *testing.T
	h       http.Handler
	st      *store.SQL
	dbPath  string
	keyring *token.Keyring
	logs    *testlog.Buffer
	now     time.Time
	minted  int

	mu     sync.Mutex
	bodies []string // every response body, for the leak check
	checks []checkCall
}

type envOption func(*Deps)

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "hub.db")
	st, err := store.OpenSQLite(context.Background(), dbPath)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	sealer, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	kr := token.NewKeyring()
	k, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	kr.Add(k, true)

	e := &testEnv{t: t, st: st, dbPath: dbPath, keyring: kr, logs: &testlog.Buffer{},
		now: time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)}
	d := Deps{
		Store:      st,
		Sealer:     sealer,
		Keyring:    kr,
		AdminToken: testAdmin,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return e.now },
		Check: func(ctx context.Context, c store.Credential, s credential.Secret, repo string) upstream.CheckResult {
			e.mu.Lock()
			e.checks = append(e.checks, checkCall{c, s, repo})
			e.mu.Unlock()
			// A careless upstream that echoes what it was sent.
			return upstream.CheckResult{Upstream: c.Host, Reachable: true, AuthScheme: "basic",
				Authenticated: false, Repository: repo, Error: "denied: bad password " + s.Password}
		},
		OnTokenMinted: func() { e.minted++ },
	}
	for _, o := range opts {
		o(&d)
	}
	e.h = New(d)
	return e
}

// do sends a request with the admin token and returns status and body.
func (e *testEnv) do(method, path, body string) (int, string) {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+testAdmin)
}

func (e *testEnv) doAuth(method, path, body, auth string) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	b := rec.Body.String()
	e.mu.Lock()
	e.bodies = append(e.bodies, b)
	e.mu.Unlock()
	if rec.Code != http.StatusNoContent {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			e.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
		if !json.Valid([]byte(b)) {
			e.t.Errorf("%s %s: body is not JSON: %q", method, path, b)
		}
	}
	return rec.Code, b
}

// must sends a request and fails the test unless the status is want; it
// decodes the body into out when out is not nil.
func (e *testEnv) must(method, path, body string, want int, out any) string {
	e.t.Helper()
	code, b := e.do(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// assertNoLeak checks that secret appears in no response body, no log line
// and no byte of the database files.
func (e *testEnv) assertNoLeak(secret string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.bodies) == 0 {
		e.t.Fatal("no responses recorded")
	}
	for _, b := range e.bodies {
		if strings.Contains(b, secret) {
			e.t.Errorf("a response body contains the secret: %s", b)
		}
	}
	if l := e.logs.String(); strings.Contains(l, secret) {
		e.t.Errorf("the log contains the secret:\n%s", l)
	}
	files, _ := filepath.Glob(e.dbPath + "*")
	if len(files) == 0 {
		e.t.Fatal("no database files found")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(secret)) {
			e.t.Errorf("database file %s contains the secret in plaintext", f)
		}
	}
}

func distinctiveSecret() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "UPSTREAM-SECRET-" + hex.EncodeToString(b[:])
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
