package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testdns"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/netguard"
)

func anon(context.Context) (authn.Authenticator, error) { return authn.Anonymous, nil }

// Finding 2: without the operator's allowance, no upstream connection may
// reach a loopback (or other special-purpose) address, whether named as an
// IP or as a name that resolves there (DNS rebinding); with it, it may.
func TestDialRefusesSpecialAddresses(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "dial-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	port := up.URL[strings.LastIndex(up.URL, ":")+1:]
	res := testdns.Resolver(t, map[string][]netip.Addr{"registry.example.com": {netip.MustParseAddr("127.0.0.1")}})
	pool := NewPool(WithResolver(res))
	for _, endpoint := range []string{up.URL, "http://registry.example.com:" + port, "http://localhost:" + port} {
		t.Run(endpoint, func(t *testing.T) {
			up.ResetLog()
			c := store.Credential{ID: "cred_" + endpoint, Version: 1, Host: "registry.example.com", Endpoint: endpoint, Kind: "basic", Username: "alice"}
			tg := Target{Credential: c, Repo: imageref.Repo{Host: "registry.example.com", Path: "org/app"}, Auth: anon}
			_, err := pool.Conn(context.Background(), tg)
			if !errors.Is(err, netguard.ErrSpecialAddress) {
				t.Fatalf("Conn = %v, want ErrSpecialAddress", err)
			}
			if n := up.Requests(); n != 0 {
				t.Fatalf("%d requests reached the loopback upstream", n)
			}
			tg.Credential.AllowPrivateNetwork = true
			if _, err := pool.Conn(context.Background(), tg); err != nil {
				t.Fatalf("with AllowPrivateNetwork: %v", err)
			}
		})
	}
}

// Finding 9: a credential without an http:// endpoint or insecure never
// talks plain HTTP, though its host is loopback (ggcr's guess): no request
// reaches the plain-HTTP server.
func TestPlainHTTPNeedsOptIn(t *testing.T) {
	var got atomic.Int64
	var auth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if r.Header.Get("Authorization") != "" {
			auth.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pool := NewPool()
	c := store.Credential{ID: "cred_plain", Version: 1, Host: host, Kind: "basic", Username: "alice", AllowPrivateNetwork: true}
	tg := Target{Credential: c, Repo: imageref.Repo{Host: host, Path: "org/app"}, Auth: func(context.Context) (authn.Authenticator, error) {
		return &authn.Basic{Username: "alice", Password: "plain-SECRET"}, nil
	}}
	conn, err := pool.Conn(context.Background(), tg)
	if err == nil {
		req, _ := http.NewRequest(http.MethodGet, conn.Base+"/v2/org/app/manifests/v1", nil)
		if resp, err := (&http.Client{Transport: conn.Transport}).Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if err == nil || got.Load() != 0 || auth.Load() != 0 {
		t.Fatalf("Conn = %v; %d plain-HTTP requests, %d with Authorization", err, got.Load(), auth.Load())
	}
	// An explicit http:// endpoint is the opt-in.
	tg.Credential.Endpoint = srv.URL
	if _, err := pool.Conn(context.Background(), tg); err != nil {
		t.Fatalf("explicit http:// endpoint: %v", err)
	}
	if got.Load() == 0 {
		t.Fatal("explicit http:// endpoint not used")
	}
}

// A same-host https->http redirect cannot downgrade a connection.
func TestGuardRefusesPlainHTTP(t *testing.T) {
	inner := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	for _, u := range []string{"http://registry.example.com/v2/", "http://registry.example.com:443/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := guard(inner, false, "registry.example.com", "registry.example.com:80").RoundTrip(req); !errors.Is(err, ErrPlainHTTP) && !errors.Is(err, ErrHostNotAllowed) {
			t.Errorf("%s: %v, want refused", u, err)
		}
		if _, err := guard(inner, false, "registry.example.com:443").RoundTrip(req); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://registry.example.com/v2/", nil)
	if _, err := guard(inner, false, "registry.example.com").RoundTrip(req); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("same host over http: %v, want ErrPlainHTTP", err)
	}
	if _, err := guard(inner, true, "registry.example.com").RoundTrip(req); err != nil {
		t.Errorf("plain HTTP allowed: %v", err)
	}
}

// echoTokenServer answers /v2/ with a Bearer challenge pointing at its own
// /token, which fails with status and a body echoing the Authorization
// header it was sent (decoded), as some error pages and WAFs do.
func echoTokenServer(t *testing.T, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="x"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
		case "/token":
			u, p, _ := r.BasicAuth()
			w.WriteHeader(status)
			if status == http.StatusOK {
				// Valid JSON without a token: go-containerregistry's error
				// then carries the whole body after a newline, JSON-escaped
				// (Redact's exact-match would miss "\u003c").
				fmt.Fprintf(w, `{"detail":"bad login %s:%s\u003c (%s)"}`, u, p, r.Header.Get("Authorization"))
				return
			}
			fmt.Fprintf(w, "bad login %s:%s (%s)\n", u, p, r.Header.Get("Authorization"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Finding 3: a token server's error body never reaches the error text,
// nor does a 200 answer without a token.
func TestTokenExchangeErrorHasNoBody(t *testing.T) {
	for _, status := range []int{400, 500, 200} {
		srv := echoTokenServer(t, status)
		c := store.Credential{ID: "cred_echo", Version: 1, Host: "registry.test", Endpoint: srv.URL, Kind: "basic", Username: "u", AllowPrivateNetwork: true}
		tg := Target{Credential: c, Repo: imageref.Repo{Host: "registry.test", Path: "org/app"}, Auth: func(context.Context) (authn.Authenticator, error) {
			return &authn.Basic{Username: "u", Password: "S3CRET-PASS"}, nil
		}}
		_, err := NewPool().Conn(context.Background(), tg)
		var he *HandshakeError
		if wantStatus := status; wantStatus == http.StatusOK {
			if !errors.As(err, &he) {
				t.Fatalf("Conn = %v, want a HandshakeError", err)
			}
		} else if !errors.As(err, &he) || he.Status != status {
			t.Fatalf("Conn = %v, want a HandshakeError with status %d", err, status)
		}
		for _, leak := range []string{"S3CRET-PASS", "bad login", "dTpTM0NSRVQtUEFTUw=="} {
			if strings.Contains(err.Error(), leak) || strings.Contains(Describe(err), leak) {
				t.Fatalf("error text has %q: %v", leak, err)
			}
		}
	}
}

// Finding 8: the pool keeps at most its cap of connections however many
// repositories are asked for, and drops expired ones.
func TestPoolIsBounded(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "lru-SECRET"), testupstream.WithTokenTTL(120*time.Second))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pool := NewPool(WithMaxConns(10), WithClock(clock))
	for i := range 50 {
		if _, err := pool.Conn(context.Background(), target(up, fmt.Sprintf("org/app%d", i), up.Password)); err != nil {
			t.Fatal(err)
		}
	}
	if n := pool.Len(); n > 10 {
		t.Fatalf("%d cached connections for 50 repositories, cap 10", n)
	}
	// The most recently used stays cached; an evicted one is dialled again.
	before := up.TokenRequests()
	pool.Conn(context.Background(), target(up, "org/app49", up.Password))
	if up.TokenRequests() != before {
		t.Fatal("recent connection was evicted")
	}
	pool.Conn(context.Background(), target(up, "org/app0", up.Password))
	if up.TokenRequests() != before+1 {
		t.Fatal("evicted connection still served")
	}
	// Expired entries are swept.
	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	pool.Conn(context.Background(), target(up, "org/fresh", up.Password))
	if n := pool.Len(); n != 1 {
		t.Fatalf("%d cached connections after expiry, want 1", n)
	}
}

// Finding 11: a caller that hangs up does not fail the others sharing its
// handshake.
func TestSharedDialSurvivesCallerCancel(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="x"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
		case "/token":
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			fmt.Fprint(w, `{"token":"tok","expires_in":300}`)
		}
	}))
	defer srv.Close()
	defer close(release)
	pool := NewPool()
	c := store.Credential{ID: "cred_sf", Version: 1, Host: "registry.test", Endpoint: srv.URL, Kind: "basic", Username: "u", AllowPrivateNetwork: true}
	tg := Target{Credential: c, Repo: imageref.Repo{Host: "registry.test", Path: "org/app"}, Auth: anon}

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := pool.Conn(ctxA, tg); errA <- err }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("token exchange never started")
	}
	errB := make(chan error, 1)
	go func() { _, err := pool.Conn(context.Background(), tg); errB <- err }()
	time.Sleep(50 * time.Millisecond) // B joins A's flight
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("A = %v, want context.Canceled", err)
	}
	release <- struct{}{}
	select {
	case err := <-errB:
		if err != nil {
			t.Fatalf("B failed because A hung up: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never finished")
	}
}

// Finding 8: many repositories asked for at once do not become a burst of
// logins against the credential's upstream account.
func TestHandshakesPerCredentialBounded(t *testing.T) {
	var cur, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="x"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
		case "/token":
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(30 * time.Millisecond)
			cur.Add(-1)
			fmt.Fprint(w, `{"token":"tok","expires_in":300}`)
		}
	}))
	defer srv.Close()
	pool := NewPool()
	c := store.Credential{ID: "cred_burst", Version: 1, Host: "registry.test", Endpoint: srv.URL, Kind: "basic", Username: "u", AllowPrivateNetwork: true}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := Target{Credential: c, Repo: imageref.Repo{Host: "registry.test", Path: fmt.Sprintf("org/app%d", i)}, Auth: anon}
			if _, err := pool.Conn(context.Background(), tg); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > maxHandshakesPerCredential {
		t.Fatalf("%d concurrent token exchanges for one credential, want at most %d", p, maxHandshakesPerCredential)
	}
}
