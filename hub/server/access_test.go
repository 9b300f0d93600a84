package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testtls"
)

// TestConsoleSessionOverTLS signs in to a real hub served over TLS: the
// cookie is Secure, HttpOnly and SameSite=Strict, works on the API, needs
// the CSRF token for changes, and is kept in the database (it survives a
// restart, as it would work on another replica).
func TestConsoleSessionOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testtls.SelfSigned(t, dir)
	data := filepath.Join(dir, "data")
	start := func() (string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{DataDir: data, Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile, NATSListen: "",
				Ready: func(a string) { ready <- a }})
		}()
		select {
		case a := <-ready:
			return "https://" + a, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("hub: %v", err)
				}
			}
		case err := <-done:
			cancel()
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatal("hub not ready")
		}
		return "", nil
	}
	base, stop := start()
	raw, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(raw))
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(method, path, body string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := do("POST", "/api/v1/session", `{"token":"`+admin+`"}`, nil)
	sc := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{"pullgate_session=", "; Secure", "; HttpOnly", "; SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	var sv struct {
		CSRF      string `json:"csrf_token"`
		Principal struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(body), &sv); err != nil || sv.CSRF == "" || sv.Principal.Kind != "admin" {
		t.Fatalf("session answer %s: %v", body, err)
	}
	if strings.Contains(body, admin) {
		t.Fatal("the session answer holds the admin token")
	}
	if resp, body := do("GET", "/api/v1/workspaces", "", nil); resp.StatusCode != 200 {
		t.Errorf("read with the cookie: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do("POST", "/api/v1/workspaces", `{"name":"acme"}`, nil); resp.StatusCode != 403 {
		t.Errorf("change without CSRF token: %d", resp.StatusCode)
	}
	if resp, body := do("POST", "/api/v1/workspaces", `{"name":"acme"}`, map[string]string{"X-CSRF-Token": sv.CSRF}); resp.StatusCode != 201 {
		t.Errorf("change with CSRF token: %d %s", resp.StatusCode, body)
	}
	stop()

	// The session is in the database: a restarted hub knows it.
	base, stop = start()
	defer stop()
	if resp, body := do("GET", "/api/v1/session", "", nil); resp.StatusCode != 200 {
		t.Errorf("session after restart: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do("DELETE", "/api/v1/session", "", map[string]string{"X-CSRF-Token": sv.CSRF}); resp.StatusCode != 204 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", "/api/v1/workspaces", "", nil); resp.StatusCode != 401 {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}
