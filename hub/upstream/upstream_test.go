package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/imageref"
)

func TestCheckRealm(t *testing.T) {
	tests := []struct {
		realm, registry string
		insecure, ok    bool
		extra           []string
	}{
		{"https://auth.docker.io/token", "registry-1.docker.io", false, true, nil},
		{"https://auth.docker.io/token", "index.docker.io", false, true, nil},
		{"https://ghcr.io/token", "ghcr.io", false, true, nil},
		{"https://gitlab.com/jwt/auth", "registry.gitlab.com", false, true, nil},
		{"https://us-docker.pkg.dev/v2/token", "us-docker.pkg.dev", false, true, nil},
		{"https://gcr.io/v2/token", "gcr.io", false, true, nil},
		{"https://quay.io/v2/auth", "quay.io", false, true, nil},
		{"https://myreg.azurecr.io/oauth2/token", "myreg.azurecr.io", false, true, nil},
		{"https://MyReg.azurecr.io/oauth2/token", "myreg.azurecr.io", false, true, nil},
		{"https://acme.jfrog.io/artifactory/api/docker/x/v2/token", "acme.jfrog.io", false, true, nil},
		{"http://127.0.0.1:5001/token", "127.0.0.1:5000", true, true, nil},
		{"https://evil.example/token", "ghcr.io", false, false, nil},
		{"https://ghcr.io.evil.example/token", "ghcr.io", false, false, nil},
		{"https://other.azurecr.io/token", "myreg.azurecr.io", false, false, nil},
		{"http://auth.docker.io/token", "registry-1.docker.io", false, false, nil},
		{"https://auth.docker.io/token", "ghcr.io", false, false, nil}, // a known realm of another registry
		{"https://169.254.169.254/token", "ghcr.io", false, false, nil},
		{"http://localhost:5001/token", "127.0.0.1:5000", true, false, nil},
		{"https://user:pw@ghcr.io/token", "ghcr.io", false, false, nil},
		{"ftp://ghcr.io/token", "ghcr.io", false, false, nil},
		{"/token", "ghcr.io", false, false, nil},
		{"", "ghcr.io", false, false, nil},
		// Finding 15: multi-customer SaaS domains missing from the public
		// suffix list; the old registrable-domain rule accepted these.
		{"https://evil.jfrog.io/token", "acme.jfrog.io", false, false, nil},
		{"https://evil.goharbor.io/token", "acme.goharbor.io", false, false, nil},
		{"https://evil.fr-par.scw.cloud/token", "rg.fr-par.scw.cloud", false, false, nil},
		// Sibling hosts of a self-hosted registry: only when the operator
		// names them for the credential (--realm-host).
		{"https://auth.corp.example/token", "registry.corp.example", false, false, nil},
		{"https://auth.corp.example/token", "registry.corp.example", false, true, []string{"auth.corp.example"}},
		{"https://AUTH.corp.example:8443/token", "registry.corp.example", false, true, []string{"auth.corp.example:8443"}},
		{"https://auth.corp.example:9443/token", "registry.corp.example", false, false, []string{"auth.corp.example:8443"}},
		{"http://auth.corp.example/token", "registry.corp.example", false, false, []string{"auth.corp.example"}},
	}
	for _, tc := range tests {
		_, err := CheckRealm(tc.realm, tc.registry, tc.insecure, tc.extra)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRealm(%q, %q, %v) = %v, want ok=%v", tc.realm, tc.registry, tc.extra, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrForeignRealm) {
			t.Errorf("error %v does not wrap ErrForeignRealm", err)
		}
	}
}

func TestGuardRefusesOtherHosts(t *testing.T) {
	var n atomic.Int64
	inner := roundTripFunc(func(*http.Request) (*http.Response, error) {
		n.Add(1)
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	g := guard(inner, false, "ghcr.io", "auth.ghcr.io")
	for _, u := range []string{"https://ghcr.io/v2/", "https://ghcr.io:443/v2/", "https://auth.ghcr.io/token"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := g.RoundTrip(req); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"https://evil.example/", "http://169.254.169.254/", "https://ghcr.io:8443/v2/", "https://ghcr.io.evil/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := g.RoundTrip(req); !errors.Is(err, ErrHostNotAllowed) {
			t.Errorf("%s: err = %v, want ErrHostNotAllowed", u, err)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("inner saw %d requests, want 3", n.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func target(up *testupstream.Registry, repo string, pass string) Target {
	c := store.Credential{ID: "cred_1", Version: 1, Name: "reg", Host: "registry.test", Endpoint: up.URL, Kind: "basic", Username: up.User,
		AllowPrivateNetwork: true} // the test upstream listens on loopback
	return Target{Credential: c, Repo: imageref.Repo{Host: "registry.test", Path: repo},
		Auth: func(context.Context) (authn.Authenticator, error) {
			return authn.FromConfig(authn.AuthConfig{Username: up.User, Password: pass}), nil
		}}
}

func TestPoolCachesUpstreamTokens(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "pool-SECRET"), testupstream.WithTokenTTL(120*time.Second))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	up.ResetLog()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pool := NewPool(WithClock(clock))
	tg := target(up, "org/app", up.Password)

	// Concurrent first requests share one handshake.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pool.Conn(context.Background(), tg); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := up.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests for 20 concurrent first uses, want 1", n)
	}
	conn, _ := pool.Conn(context.Background(), tg)
	req, _ := http.NewRequest(http.MethodHead, conn.Base+"/v2/org/app/manifests/v1", nil)
	resp, err := (&http.Client{Transport: conn.Transport}).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD with pooled conn: %v %v", resp, err)
	}
	if up.TokenRequests() != 1 {
		t.Fatal("cached token not reused")
	}
	// Renewed ahead of expiry: 120s token, reused at 80s, renewed by 100s.
	mu.Lock()
	now = now.Add(80 * time.Second)
	mu.Unlock()
	pool.Conn(context.Background(), tg)
	if up.TokenRequests() != 1 {
		t.Fatal("token renewed too early")
	}
	mu.Lock()
	now = now.Add(20 * time.Second)
	mu.Unlock()
	pool.Conn(context.Background(), tg)
	if up.TokenRequests() != 2 {
		t.Fatalf("token not renewed before expiry: %d token requests", up.TokenRequests())
	}
	// A new secret version is a new connection, and so is a new username.
	tg.Credential.Version = 2
	pool.Conn(context.Background(), tg)
	if up.TokenRequests() != 3 {
		t.Fatal("new credential version reused the old token")
	}
	tg.Credential.Username = "alice2"
	pool.Conn(context.Background(), tg)
	if up.TokenRequests() != 4 {
		t.Fatal("changed username reused the old connection")
	}
}

func TestCheck(t *testing.T) {
	basic := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "check-SECRET"))
	bearer := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "check-SECRET"))
	for _, up := range []*testupstream.Registry{basic, bearer} {
		up.PushRandomImage(t, "org/app", "v1", 1, 64)
	}
	pool := NewPool()
	for _, tc := range []struct {
		name     string
		up       *testupstream.Registry
		pass     string
		repo     string
		authOK   bool
		pullOK   bool
		errMatch string
	}{
		{"basic ok", basic, "check-SECRET", "org/app", true, true, ""},
		{"basic wrong password", basic, "nope-nope", "org/app", false, false, "authenticate: the upstream rejected the username or password (/v2/ answered 401 Unauthorized)"},
		{"bearer ok", bearer, "check-SECRET", "org/app", true, true, ""},
		{"bearer no repo", bearer, "check-SECRET", "", true, false, ""},
		{"bearer wrong password", bearer, "nope-nope", "org/app", false, false, "authenticate: the upstream rejected the username or password ("},
		{"bearer missing repo", bearer, "check-SECRET", "org/missing", true, false, "list tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := target(tc.up, "", tc.pass)
			res := pool.Check(context.Background(), tg.Credential, authn.FromConfig(authn.AuthConfig{Username: "alice", Password: tc.pass}), tc.repo)
			if !res.Reachable || res.Authenticated != tc.authOK || res.CanPull != tc.pullOK || !strings.Contains(res.Error, tc.errMatch) {
				t.Fatalf("%+v", res)
			}
			if strings.Contains(res.Error, tc.pass) {
				t.Fatal("secret in check result")
			}
		})
	}
	res := pool.Check(context.Background(), store.Credential{Host: "registry.test", Endpoint: "http://127.0.0.1:1", AllowPrivateNetwork: true}, authn.Anonymous, "")
	if res.Reachable || res.Error == "" {
		t.Fatalf("unreachable upstream: %+v", res)
	}
}

func TestRedact(t *testing.T) {
	cfg := &authn.AuthConfig{Username: "u", Password: "hunter2-secret"}
	s := Redact("token server said: bad password hunter2-secret (dTpodW50ZXIyLXNlY3JldA==)", cfg)
	if strings.Contains(s, "hunter2") || strings.Contains(s, "dTpodW50ZXIyLXNlY3JldA==") {
		t.Fatal(s)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:5000", "https://registry.corp:8443/", "https://r.example"} {
		if _, err := ParseEndpoint(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:5000", "ftp://x", "https://u:p@x", "https://x/path", "https://x?q=1", "https://", "http://a b"} {
		if _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestJWTLifetime(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	for _, tc := range []struct {
		tok  string
		want int
	}{
		{jwt(`{"exp":1900000600}`), 600},
		{jwt(`{"exp":1900090000}`), 3600}, // capped at an hour
		{jwt(`{"exp":1899999000}`), 0},    // already expired
		{jwt(`{"sub":"x"}`), 0},
		{"opaque-token", 0},
		{"a.%%%.c", 0},
	} {
		if got := jwtLifetime(tc.tok, now); got != tc.want {
			t.Errorf("jwtLifetime(%q) = %d, want %d", tc.tok, got, tc.want)
		}
	}
}
