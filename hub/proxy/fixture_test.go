package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/internal/testupstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

// fixture is a hub proxy over a real SQLite store, served on loopback.
type fixture struct {
	t      testing.TB
	store  *store.SQL
	sealer *secrets.Sealer
	keys   *token.Keyring
	proxy  *Proxy
	hub    *httptest.Server
	host   string // hub host:port
	logs   *testlog.Buffer
	net    *countingTransport // every request the hub sends upstream
	audit  *memRecorder
	clock  atomic.Int64 // unix nanos; 0 means time.Now
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &testlog.Buffer{}, audit: &memRecorder{}}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	f.sealer, _ = secrets.New(bytes.Repeat([]byte{42}, secrets.KeySize))
	f.keys = token.NewKeyring(token.WithClock(f.now))
	key, _ := token.NewKey()
	f.keys.Add(key, true)
	f.net = &countingTransport{}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.proxy = New(st, f.sealer, f.keys, f.audit, append([]Option{WithLogger(log), WithClock(f.now),
		WithPool(upstream.NewPool(upstream.WithWrap(f.net.wrap), upstream.WithClock(f.now)))}, opts...)...)
	f.hub = httptest.NewServer(f.proxy.Handler())
	t.Cleanup(f.hub.Close)
	f.host = strings.TrimPrefix(f.hub.URL, "http://")
	return f
}

func (f *fixture) now() time.Time {
	if n := f.clock.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

func (f *fixture) workspace(name string) store.Workspace {
	ws, err := f.store.CreateWorkspace(context.Background(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return ws
}

// credential stores a credential for host whose API answers at up. Test
// upstreams listen on loopback, so the credential has the operator's
// private-network allowance.
func (f *fixture) credential(ws store.Workspace, name, host string, up *testupstream.Registry, password string) store.Credential {
	f.t.Helper()
	c := store.Credential{WorkspaceID: ws.ID, Name: name, Host: host, Endpoint: up.URL, Kind: credential.KindBasic, Username: up.User, Enabled: true,
		AllowPrivateNetwork: true}
	if up.User == "" {
		c.Username = "anonymous"
	}
	sealed, err := credential.Seal(f.sealer, c, credential.Secret{Password: password})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err = f.store.CreateCredential(context.Background(), ws.Name, c, sealed)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) install(ws store.Workspace, name string, repos ...string) store.Install {
	f.t.Helper()
	in, err := f.store.CreateInstall(context.Background(), ws.Name, store.Install{Name: name, Repos: repos, Enabled: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

// token mints an install token from the install's current state.
func (f *fixture) token(ws store.Workspace, name string, ttl time.Duration) string {
	f.t.Helper()
	in, err := f.store.GetInstall(context.Background(), ws.Name, name)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, _, err := f.keys.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Repos: in.Repos, Generation: in.Generation}, ttl)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// ref is the path-prefix image reference through the hub.
func (f *fixture) ref(host, repo, tag string) name.Reference {
	r, err := name.ParseReference(f.host + "/" + host + "/" + repo + ":" + tag)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) pull(ref name.Reference, tok string) (v1.Image, error) {
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "pullgate", Password: tok}))
	if err != nil {
		return nil, err
	}
	// Read every blob so the pull is complete, as a runtime's would be.
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	if _, err := img.ConfigFile(); err != nil {
		return nil, err
	}
	return img, nil
}

// get sends a raw request to the hub with the install token as Basic
// password (or none when tok is empty).
func (f *fixture) get(method, path, tok string, hdr ...string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.hub.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if tok != "" {
		req.SetBasicAuth("pullgate", tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countingTransport counts the requests of every transport it wraps.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) wrap(inner http.RoundTripper) http.RoundTripper {
	return countingRT{c: c, inner: inner}
}

type countingRT struct {
	c     *countingTransport
	inner http.RoundTripper
}

func (r countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.c.n.Add(1)
	return r.inner.RoundTrip(req)
}

type memRecorder struct {
	mu     sync.Mutex
	events []store.AuditEvent
}

func (m *memRecorder) Record(e store.AuditEvent) {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
}

func (m *memRecorder) all() []store.AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.AuditEvent(nil), m.events...)
}
