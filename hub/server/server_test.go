package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/internal/testupstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

type hub struct {
	url    string
	mon    string // base URL of the metrics listener
	nats   string
	data   string
	cancel context.CancelFunc
	done   chan error
	logs   *testlog.Buffer
}

func startHub(t *testing.T, data string, masterKey string) (*hub, error) {
	t.Helper()
	return startHubWith(t, data, masterKey, nil)
}

// startHubWith is startHub with mod applied to the Config.
func startHubWith(t *testing.T, data string, masterKey string, mod func(*Config)) (*hub, error) {
	t.Helper()
	h := &hub{data: data, done: make(chan error, 1), logs: &testlog.Buffer{}}
	natsPort := testupstream.FreePort(t)
	h.nats = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	ready, mready := make(chan string, 1), make(chan string, 1)
	cfg := Config{
		DataDir: data, Listen: "127.0.0.1:0", NATSListen: fmt.Sprintf("127.0.0.1:%d", natsPort), MasterKey: masterKey,
		MetricsListen: "127.0.0.1:0", MetricsReady: func(addr string) { mready <- addr },
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:  func(addr string) { ready <- addr },
	}
	if mod != nil {
		mod(&cfg)
	}
	go func() {
		h.done <- Run(ctx, cfg)
	}()
	select {
	case addr := <-ready:
		h.url = "http://" + addr
		h.mon = "http://" + <-mready
		t.Cleanup(func() { h.stop(t) })
		return h, nil
	case err := <-h.done:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("hub not ready after 30s")
	}
	return nil, nil
}

func (h *hub) stop(t *testing.T) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("hub exited with %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Error("hub did not shut down within 40s")
	}
}

func (h *hub) adminToken(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(h.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (h *hub) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+h.adminToken(t))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeFirstStartAndRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pullgate-data")
	h, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"master.key", "admin.token", "pullgate.db", "nats-issuer.nk", "nats-hub.password"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, h.url+p); code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}

	// The embedded NATS server is up and takes only the
	// hub itself and identities the hub's auth callout admits.
	if nc, err := nats.Connect(h.nats, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS connection accepted")
	}
	pw, err := os.ReadFile(filepath.Join(data, "nats-hub.password"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(h.nats, nats.Timeout(5*time.Second), nats.UserInfo("pullgate-hub", string(pw)))
	if err != nil {
		t.Fatalf("connect embedded NATS: %v", err)
	}
	// JetStream is off: nothing uses it, and it is attack surface and a
	// store on disk.
	if info := natsInfo(t, strings.TrimPrefix(h.nats, "nats://")); strings.Contains(info, `"jetstream":true`) {
		t.Fatalf("JetStream is enabled on the embedded NATS server: %s", info)
	}
	if _, err := os.Stat(filepath.Join(data, "nats")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("NATS store dir in the data dir: %v", err)
	}
	nc.Close()

	// Admin API needs the admin token.
	if code, _ := get(t, h.url+"/api/v1/workspaces"); code != http.StatusUnauthorized {
		t.Fatalf("API without admin token: %d", code)
	}
	if code, out := h.api(t, "POST", "/api/v1/workspaces", map[string]any{"name": "acme"}); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("create workspace: %d %v", code, out)
	}
	if code, out := h.api(t, "POST", "/api/v1/workspaces/acme/installs", map[string]any{"name": "web", "all_repos": true}); code >= 300 {
		t.Fatalf("create install: %d %v", code, out)
	}
	code, out := h.api(t, "POST", "/api/v1/workspaces/acme/installs/web/tokens", map[string]any{"ttl": "10m"})
	if code >= 300 {
		t.Fatalf("mint: %d %v", code, out)
	}
	tok := out["token"].(string)
	checkToken := func(want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", h.url+"/v2/", nil)
		req.SetBasicAuth("x", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("/v2/ with install token: %d, want %d", resp.StatusCode, want)
		}
	}
	checkToken(http.StatusOK)
	// Metrics only on their own listener, never on the public one.
	if code, _ := get(t, h.url+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", code)
	}
	_, metrics := get(t, h.mon+"/metrics")
	for _, m := range []string{"pullgate_http_requests_total", "pullgate_tokens_minted_total 1", "pullgate_http_request_duration_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	admin := h.adminToken(t)
	h.stop(t)
	if _, err := nats.Connect(h.nats, nats.Timeout(time.Second)); err == nil {
		t.Fatal("NATS still accepting after shutdown")
	}

	// Restart on the same data: same admin token, same signing key, so
	// tokens issued before the restart still work.
	h2, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	if h2.adminToken(t) != admin {
		t.Fatal("admin token changed across restart")
	}
	h = h2
	checkToken(http.StatusOK)
}

func TestServeRefusesWrongMasterKey(t *testing.T) {
	data := t.TempDir()
	h, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	_, err = startHub(t, data, strings.Repeat("ab", 32))
	if err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("start with another master key: %v", err)
	}
}

// Invariant 1, at rest and in logs: the upstream password is in no file of
// the data dir and in no log line, whatever the API was asked.
func TestNoPlaintextSecretOnDiskOrInLogs(t *testing.T) {
	const secret = "UPSTREAM-SECRET-c0ffee-4242"
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", secret))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	data := t.TempDir()
	h, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	h.api(t, "POST", "/api/v1/workspaces", map[string]any{"name": "acme"})
	if code, out := h.api(t, "POST", "/api/v1/workspaces/acme/registries", map[string]any{
		"name": "reg", "host": "registry.test", "endpoint": up.URL, "username": "alice", "password": secret,
		"allow_private_network": true}); code >= 300 { // the test upstream is on loopback
		t.Fatalf("add registry: %d %v", code, out)
	}
	var outputs []string
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/workspaces/acme/registries"},
		{"GET", "/api/v1/workspaces/acme/registries/reg"},
		{"POST", "/api/v1/workspaces/acme/registries/reg/test"},
	} {
		_, out := h.api(t, c.method, c.path, map[string]any{})
		b, _ := json.Marshal(out)
		outputs = append(outputs, string(b))
	}
	h.api(t, "POST", "/api/v1/workspaces/acme/installs", map[string]any{"name": "web", "all_repos": true})
	_, out := h.api(t, "POST", "/api/v1/workspaces/acme/installs/web/tokens", map[string]any{})
	req, _ := http.NewRequest("GET", h.url+"/v2/registry.test/org/app/manifests/v1", nil)
	req.SetBasicAuth("x", out["token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pull manifest: %d %s", resp.StatusCode, b)
	}
	outputs = append(outputs, string(b), fmt.Sprint(resp.Header))
	h.stop(t) // flush audit, close the database

	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Fatalf("secret in API/proxy output: %s", o)
		}
	}
	if strings.Contains(h.logs.String(), secret) {
		t.Fatal("secret in hub logs")
	}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("secret in plaintext in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
