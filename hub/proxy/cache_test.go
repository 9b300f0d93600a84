package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// newCacheFixture is a hub proxy with a pull-through cache of max bytes in
// a temp dir.
func newCacheFixture(t *testing.T, max int64, cfg CacheConfig, opts ...Option) (*fixture, *cache.Cache) {
	t.Helper()
	s, err := cache.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(context.Background(), s, max)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cache = c
	if cfg.StaleWindow == 0 {
		cfg.StaleWindow = DefaultStaleWindow
	}
	f := newFixture(t, append([]Option{WithCache(cfg)}, opts...)...)
	return f, c
}

// upstreamGets counts GETs of path suffix in an in-process registry's own
// log.
func upstreamGets(up *testupstream.Registry, suffix string) int {
	n := 0
	for _, r := range up.Log() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func blobPath(f *fixture, repo, digest string) string {
	return "/v2/" + upstreamHost + "/" + repo + "/blobs/" + digest
}

// cached reports whether digest has a committed entry of any origin.
func cached(c *cache.Cache, digest string) bool {
	for _, e := range c.List() {
		if e.Digest == digest {
			return true
		}
	}
	return false
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func cacheResults(f *fixture, kind string) map[string]int {
	out := map[string]int{}
	for _, e := range f.audit.all() {
		if e.Kind == kind {
			out[e.Cache]++
		}
	}
	return out
}

// Concurrent cold pulls of one blob, by two tenants, cause exactly one
// blob GET at the upstream (its own request log counts), and every client
// gets the right bytes.
func TestCacheConcurrentColdPullsOneUpstreamGet(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "tok-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 8<<20)
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	var toks []string
	for _, name := range []string{"acme", "globex"} {
		ws := f.workspace(name)
		f.credential(ws, "reg", upstreamHost, up, up.Password)
		f.install(ws, "web")
		toks = append(toks, f.token(ws, "web", 10*time.Minute))
	}
	up.ResetLog()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(tok string) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, "org/app", h.String()), nil)
			req.SetBasicAuth("x", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || sha(b) != h.String() {
				errs <- fmt.Errorf("status %d, %d bytes, err %v", resp.StatusCode, len(b), err)
			}
		}(toks[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := upstreamGets(up, "/blobs/"+h.String()); got != 1 {
		t.Fatalf("%d upstream blob GETs for %d concurrent cold pulls, want 1", got, n)
	}
	res := cacheResults(f, "blob")
	if res[cacheMiss] != 1 || res[cacheHit] != n-1 {
		t.Fatalf("audit cache results %v, want 1 miss and %d hits", res, n-1)
	}
	// A Range request is answered from the cache.
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), toks[0], "Range", "bytes=100-199")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusPartialContent || len(body) != 100 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", 8<<20) {
		t.Fatalf("range from cache: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	if got := upstreamGets(up, "/blobs/"+h.String()); got != 1 {
		t.Fatalf("range request went upstream: %d GETs", got)
	}
	if st := c.Stats(); st.Entries != 1 || st.Hits < n {
		t.Fatalf("cache stats %+v", st)
	}
}

// front is a reverse proxy in front of an upstream registry that can
// corrupt blob bodies, answer 503, or be stopped.
type front struct {
	srv     *httptest.Server
	corrupt atomic.Bool
	fail    atomic.Bool
	blobGET atomic.Int64
}

func newFront(t *testing.T, up *testupstream.Registry) (*front, *testupstream.Registry) {
	fr := &front{}
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if fr.corrupt.Load() && resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/") {
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			resp.Body.Close()
			b[len(b)/2] ^= 0xff
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
		return nil
	}
	fr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fr.fail.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			fr.blobGET.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(fr.srv.Close)
	// The same registry as a credential sees it: through the front.
	view := &testupstream.Registry{URL: fr.srv.URL, Host: strings.TrimPrefix(fr.srv.URL, "http://"), User: up.User, Password: up.Password}
	return fr, view
}

// A corrupted upstream blob is served to nobody from the cache: the first
// client's stream is cut (it cannot take the bytes for good ones), and
// every later request goes to the upstream again.
func TestCacheCorruptUpstreamNeverServed(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 1<<20)
	fr, view := newFront(t, up)
	fr.corrupt.Store(true)
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, view, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, "org/app", h.String()), nil)
		req.SetBasicAuth("x", tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && sha(b) != h.String() {
				t.Fatalf("pull %d: corrupt bytes delivered as a complete response (%d bytes, %v)\n%+v\n%s", i, len(b), resp.Header, f.audit.all(), f.logs)
			}
			if rerr == nil {
				t.Fatalf("pull %d: complete response from a corrupt upstream", i)
			}
		}
	}
	if got := fr.blobGET.Load(); got != 3 {
		t.Fatalf("%d upstream blob GETs for 3 pulls: a corrupt entry was served from the cache", got)
	}
	if st := c.Stats(); st.Entries != 0 || st.FillFailures != 3 {
		t.Fatalf("cache stats %+v", st)
	}
	// The upstream heals: the next pull caches the right bytes.
	fr.corrupt.Store(false)
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
	if b := readBody(t, resp); resp.StatusCode != http.StatusOK || sha([]byte(b)) != h.String() {
		t.Fatalf("after healing: %d", resp.StatusCode)
	}
	if !cached(c, h.String()) {
		t.Fatal("good bytes not cached")
	}
}

// Tenant B, whose credential cannot read the repository, gets the
// upstream's refusal, never A's cached bytes: for the blob, the manifest
// by digest and the manifest by tag.
func TestCacheTenantWithoutAccess(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	img, h := up.PushBlobImage(t, "org/app", "v1", 256<<10)
	md, _ := img.Digest()
	// B's credential reaches a registry of its own that has no org/app:
	// valid credentials, no access to this repository.
	other := testupstream.StartInProcess(t, testupstream.WithBasicAuth("bob", "bob-SECRET-pw"))
	other.PushRandomImage(t, "bob/own", "v1", 1, 1024)

	tests := []struct {
		name   string
		cred   func(f *fixture, ws store.Workspace)
		status int
	}{
		{"wrong password", func(f *fixture, ws store.Workspace) { f.credential(ws, "reg", upstreamHost, up, "not-the-password") }, http.StatusForbidden},
		{"repository not visible", func(f *fixture, ws store.Workspace) { f.credential(ws, "reg", upstreamHost, other, other.Password) }, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newCacheFixture(t, 64<<20, CacheConfig{TagTTL: time.Hour})
			wsA := f.workspace("acme")
			f.credential(wsA, "reg", upstreamHost, up, up.Password)
			f.install(wsA, "web")
			tokA := f.token(wsA, "web", 10*time.Minute)
			if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tokA); err != nil {
				t.Fatalf("A's pull: %v", err)
			}
			if !cached(c, h.String()) || !cached(c, md.String()) {
				t.Fatal("A's pull was not cached")
			}
			wsB := f.workspace("globex")
			tc.cred(f, wsB)
			f.install(wsB, "web")
			tokB := f.token(wsB, "web", 10*time.Minute)
			accept := "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
			for _, path := range []string{
				blobPath(f, "org/app", h.String()),
				"/v2/" + upstreamHost + "/org/app/manifests/" + md.String(),
				"/v2/" + upstreamHost + "/org/app/manifests/v1",
			} {
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					resp := f.get(method, path, tokB, "Accept", accept)
					body := readBody(t, resp)
					if resp.StatusCode != tc.status || strings.Contains(body, "alice") || resp.Header.Get("Docker-Content-Digest") != "" {
						t.Fatalf("B %s %s: %d, %d body bytes (digest header %q), want %d", method, path, resp.StatusCode, len(body), resp.Header.Get("Docker-Content-Digest"), tc.status)
					}
				}
			}
			for _, e := range f.audit.all() {
				if e.Workspace == "globex" && e.Cache != "" {
					t.Fatalf("B's request was answered by the cache: %+v", e)
				}
			}
		})
	}
}

// liar is an upstream a tenant controls: it answers 200 to every HEAD,
// with the digest asked for, and has no content.
func liar(t *testing.T) *testupstream.Registry {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		if r.Method == http.MethodHead && len(parts) > 2 {
			w.Header().Set("Docker-Content-Digest", parts[len(parts)-1])
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			w.Header().Set("Content-Length", "1")
			return
		}
		if r.URL.Path == "/v2/" {
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return &testupstream.Registry{URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://"), User: "mallory", Password: "any"}
}

// A tenant that points its credential at an upstream it controls, which
// claims to have every digest, still cannot read what another tenant's
// pulls from the real upstream cached: entries are per upstream.
func TestCacheLyingUpstreamGetsNothing(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	img, h := up.PushBlobImage(t, "org/app", "v1", 256<<10)
	md, _ := img.Digest()
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	wsA := f.workspace("acme")
	f.credential(wsA, "reg", upstreamHost, up, up.Password)
	f.install(wsA, "web")
	if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), f.token(wsA, "web", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !cached(c, h.String()) {
		t.Fatal("A's pull was not cached")
	}
	wsB := f.workspace("mallory")
	f.credential(wsB, "reg", upstreamHost, liar(t), "any")
	f.install(wsB, "web")
	tokB := f.token(wsB, "web", 10*time.Minute)
	for _, path := range []string{blobPath(f, "org/app", h.String()), "/v2/" + upstreamHost + "/org/app/manifests/" + md.String()} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp := f.get(method, path, tokB, "Accept", "application/vnd.docker.distribution.manifest.v2+json")
			body := readBody(t, resp)
			// A HEAD passes the liar's own answer through; a GET must not
			// produce A's bytes.
			if method == http.MethodGet && resp.StatusCode == http.StatusOK {
				t.Fatalf("B %s %s through a lying upstream: 200, %d bytes", method, path, len(body))
			}
		}
	}
	for _, e := range f.audit.all() {
		if e.Workspace == "mallory" && (e.Cache == cacheHit || e.Cache == cacheStale) {
			t.Fatalf("B was answered from the cache: %+v", e)
		}
	}
}

// With the upstream stopped (or failing), the last known manifest for a
// tag and the cached blobs are served to an install whose credential
// confirmed them before, and the audit says stale; with serve-stale off,
// or to a tenant that never confirmed, they are not.
func TestCacheServeStale(t *testing.T) {
	tests := []struct {
		name  string
		stale time.Duration
		down  func(fr *front)
		want  bool
	}{
		{"upstream stopped", DefaultStaleWindow, func(fr *front) { fr.srv.CloseClientConnections(); fr.srv.Close() }, true},
		{"upstream 503", DefaultStaleWindow, func(fr *front) { fr.fail.Store(true) }, true},
		{"serve-stale off", -1, func(fr *front) { fr.fail.Store(true) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
			up.PushRandomImage(t, "org/app", "v1", 2, 64<<10)
			fr, view := newFront(t, up)
			window := tc.stale
			if window < 0 {
				window = 0
			}
			s, _ := cache.NewLocal(t.TempDir())
			c, _ := cache.Open(context.Background(), s, 64<<20)
			f := newFixture(t, WithCache(CacheConfig{Cache: c, ConfirmTTL: time.Minute, StaleWindow: window}))
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, view, up.Password)
			f.install(ws, "web")
			wsB := f.workspace("globex")
			f.credential(wsB, "reg", upstreamHost, view, up.Password)
			f.install(wsB, "web")
			tok := f.token(ws, "web", 10*time.Minute)
			tokB := f.token(wsB, "web", 10*time.Minute)
			if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tok); err != nil {
				t.Fatalf("warm pull: %v", err)
			}
			tc.down(fr)
			// Past the confirmations' freshness: everything needs the
			// upstream, which is down.
			f.clock.Store(time.Now().Add(2 * time.Minute).UnixNano())
			_, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tok)
			if tc.want && err != nil {
				t.Fatalf("pull with the upstream down: %v", err)
			}
			if !tc.want && err == nil {
				t.Fatal("served stale with serve-stale off")
			}
			if tc.want {
				res := cacheResults(f, "blob")
				mres := cacheResults(f, "manifest")
				if res[cacheStale] < 2 || mres[cacheStale] < 1 {
					t.Fatalf("audit does not say stale: blobs %v manifests %v", res, mres)
				}
			}
			// B never had its credential confirm anything: nothing stale
			// for B.
			if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tokB); err == nil {
				t.Fatal("tenant B was served stale content its credential never confirmed")
			}
		})
	}
}

// Eviction under a small cap while pulls run: every pull gets the right
// bytes, the cache ends under its cap, and entries were evicted.
func TestCacheEvictionWhilePulling(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	const size = 512 << 10
	var digests []string
	for i := 0; i < 6; i++ {
		_, h := up.PushBlobImage(t, fmt.Sprintf("org/app%d", i), "v1", size)
		digests = append(digests, h.String())
	}
	// Room for four entries and a half (one entry may take a quarter).
	f, c := newCacheFixture(t, 4*size+size/2, CacheConfig{})
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				k := (w + i) % len(digests)
				req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, fmt.Sprintf("org/app%d", k), digests[k]), nil)
				req.SetBasicAuth("x", tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || sha(b) != digests[k] {
					errs <- fmt.Errorf("pull %d: %d, err %v", k, resp.StatusCode, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\nhub log:\n%s", err, f.logs)
	}
	st := c.Stats()
	if st.Bytes > c.Max() || st.Evictions == 0 || st.Filling != 0 {
		t.Fatalf("cache stats after the pulls: %+v (cap %d)", st, c.Max())
	}
}

// Over HTTP/2 (no sendfile) a cached stream is cut by a revoke too.
func TestCacheRevokeOnHitHTTP2(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 32<<20)
	f, c := newCacheFixture(t, 128<<20, CacheConfig{}, WithStreamChecks(time.Hour, 256<<10, 0))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	srv := httptest.NewUnstartedServer(f.proxy.Handler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := srv.Client()
	get := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+blobPath(f, "org/app", h.String()), nil)
		req.SetBasicAuth("x", tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
		return resp
	}
	resp := get()
	if b, err := io.ReadAll(resp.Body); err != nil || sha(b) != h.String() || !cached(c, h.String()) {
		t.Fatalf("first pull over HTTP/2: %v", err)
	}
	resp.Body.Close()
	resp = get()
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	off := false
	f.must(f.store.UpdateInstall(context.Background(), ws.Name, "web", store.InstallUpdate{Enabled: &off}))
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("cached HTTP/2 stream not cut by the revoke: %d more bytes and a clean end", n)
	}
}

// A revoke refuses the next request even when the bytes are cached, and
// cuts a cached stream that is already running.
func TestCacheRevokeOnHit(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 32<<20)
	f, c := newCacheFixture(t, 128<<20, CacheConfig{}, WithStreamChecks(time.Hour, 256<<10, 0))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
	if b := readBody(t, resp); sha([]byte(b)) != h.String() || !cached(c, h.String()) {
		t.Fatal("blob not pulled and cached")
	}
	// A cached stream in progress: read a little, revoke, read the rest.
	resp = f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	off := false
	f.must(f.store.UpdateInstall(context.Background(), ws.Name, "web", store.InstallUpdate{Enabled: &off}))
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("cached stream not cut by the revoke: %d more bytes and a clean end", n)
	}
	// The next request, on a cache hit, is refused.
	resp = f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked install on a cache hit: %d", resp.StatusCode)
	}
	var cut bool
	for _, e := range f.audit.all() {
		if strings.HasPrefix(e.Reason, "stream_cut:") && e.Cache == cacheHit {
			cut = true
		}
	}
	if !cut {
		t.Fatal("no stream_cut audit event for the cached stream")
	}
}

// userFront is a reverse proxy in front of up on which intercept may
// answer a request first, knowing its Basic-auth user. It returns the
// front's URL: credentials of every tenant that point there share one
// cache origin.
func userFront(t *testing.T, up *testupstream.Registry, intercept func(w http.ResponseWriter, r *http.Request, user string) bool) string {
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		if !intercept(w, r, user) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func viewAs(u, user, password string) *testupstream.Registry {
	return &testupstream.Registry{URL: u, Host: strings.TrimPrefix(u, "http://"), User: user, Password: password}
}

func isBlobGET(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
}

// liarGET answers 200 with one wrong byte to every GET: a fill with it
// fails its digest check.
func liarGET(t *testing.T) *testupstream.Registry {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Length", "1")
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "x")
	}))
	t.Cleanup(srv.Close)
	return viewAs(srv.URL, "mallory", "any")
}

// A credential's confirmations do not survive its update. Mallory
// "confirms" A's digest with her own lying registry (the fill fails its
// digest check), then repoints the same credential (an endpoint update
// keeps the secret's version) at A's registry, where her password is
// wrong: she must get the upstream's refusal, not A's cached blob.
func TestCacheCredentialUpdateDropsConfirmations(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 256<<10)
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	wsA := f.workspace("acme")
	f.credential(wsA, "reg", upstreamHost, up, up.Password)
	f.install(wsA, "web")
	if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), f.token(wsA, "web", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !cached(c, h.String()) {
		t.Fatal("A's pull was not cached")
	}
	wsB := f.workspace("mallory")
	f.credential(wsB, "reg", upstreamHost, liarGET(t), "any")
	f.install(wsB, "web")
	tokB := f.token(wsB, "web", 10*time.Minute)
	// Fails (digest mismatch, the hub aborts the stream).
	req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, "org/app", h.String()), nil)
	req.SetBasicAuth("pullgate", tokB)
	if r, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}

	ep := up.URL
	if _, err := f.store.UpdateCredential(context.Background(), wsB.Name, "reg", store.CredentialUpdate{Endpoint: &ep}); err != nil {
		t.Fatal(err)
	}
	// With this (wrong) password the real upstream refuses.
	tokB = f.token(wsB, "web", 10*time.Minute)
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tokB)
	body := readBody(t, resp)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("mallory read A's cached blob (%d bytes) with a credential the upstream refuses", len(body))
	}
}

// A fill's 200 confirms nothing until its bytes were verified and
// committed. Mallory's credential reaches the same upstream as A's (one
// cache origin) with a wrong password, and the upstream (a front that
// misbehaves for her) answers her blob GET 200 with wrong bytes. After
// A's pull caches the blob, Mallory must still get the upstream's
// refusal.
func TestCacheFailedFillConfirmsNothing(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 256<<10)
	u := userFront(t, up, func(w http.ResponseWriter, r *http.Request, user string) bool {
		if user != "mallory" || !isBlobGET(r) {
			return false
		}
		w.Header().Set("Content-Length", "1")
		io.WriteString(w, "x")
		return true
	})
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	wsM := f.workspace("mallory")
	f.credential(wsM, "reg", upstreamHost, viewAs(u, "mallory", "wrong"), "wrong")
	f.install(wsM, "web")
	tokM := f.token(wsM, "web", 10*time.Minute)
	req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, "org/app", h.String()), nil)
	req.SetBasicAuth("pullgate", tokM)
	if r, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}

	wsA := f.workspace("acme")
	f.credential(wsA, "reg", upstreamHost, viewAs(u, up.User, up.Password), up.Password)
	f.install(wsA, "web")
	if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), f.token(wsA, "web", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !cached(c, h.String()) {
		t.Fatal("A's pull was not cached")
	}
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tokM)
	body := readBody(t, resp)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("mallory read A's cached blob (%d bytes) under the confirmation of a fill that failed", len(body))
	}
}

// A request that joined another request's fill, whose fetch then failed
// (that request's credential has a wrong password), fills with its own
// credential instead of failing.
func TestCacheJoinerOfFailedFillRetries(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 256<<10)
	mallorysGET := make(chan struct{})
	alicesHEAD := make(chan struct{})
	var once1, once2 sync.Once
	u := userFront(t, up, func(w http.ResponseWriter, r *http.Request, user string) bool {
		switch {
		case user == "mallory" && isBlobGET(r):
			// Held until Alice's request has confirmed and joined.
			once1.Do(func() { close(mallorysGET) })
			select {
			case <-alicesHEAD:
				time.Sleep(200 * time.Millisecond)
			case <-time.After(10 * time.Second):
			}
		case user == "alice" && r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/"):
			once2.Do(func() { close(alicesHEAD) })
		}
		return false
	})
	f, _ := newCacheFixture(t, 64<<20, CacheConfig{})
	wsM := f.workspace("mallory")
	f.credential(wsM, "reg", upstreamHost, viewAs(u, "mallory", "wrong"), "wrong")
	f.install(wsM, "web")
	tokM := f.token(wsM, "web", 10*time.Minute)
	wsA := f.workspace("acme")
	f.credential(wsA, "reg", upstreamHost, viewAs(u, up.User, up.Password), up.Password)
	f.install(wsA, "web")
	tokA := f.token(wsA, "web", 10*time.Minute)

	done := make(chan int)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, f.hub.URL+blobPath(f, "org/app", h.String()), nil)
		req.SetBasicAuth("pullgate", tokM)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		done <- r.StatusCode
	}()
	<-mallorysGET
	resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tokA)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || sha([]byte(body)) != h.String() {
		t.Fatalf("the joiner of a failed fill got %d: %s", resp.StatusCode, body)
	}
	if code := <-done; code == http.StatusOK {
		t.Fatal("mallory's pull with a wrong password succeeded")
	}
}

// A HEAD that fills nothing answers with the same header set whether
// another tenant pulled the digest (a cache hit) or not (pass-through):
// the headers do not tell a tenant what others pulled.
func TestCacheHeadSameHeadersHitOrMiss(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h1 := up.PushBlobImage(t, "org/app", "v1", 64<<10)
	_, h2 := up.PushBlobImage(t, "org/app", "v2", 64<<10)
	f, c := newCacheFixture(t, 64<<20, CacheConfig{})
	wsA := f.workspace("acme")
	f.credential(wsA, "reg", upstreamHost, up, up.Password)
	f.install(wsA, "web")
	if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), f.token(wsA, "web", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !cached(c, h1.String()) || cached(c, h2.String()) {
		t.Fatal("setup: want v1's blob cached and v2's not")
	}
	wsB := f.workspace("globex")
	f.credential(wsB, "reg", upstreamHost, up, up.Password)
	f.install(wsB, "web")
	tokB := f.token(wsB, "web", 10*time.Minute)
	r1 := f.get(http.MethodHead, blobPath(f, "org/app", h1.String()), tokB)
	r2 := f.get(http.MethodHead, blobPath(f, "org/app", h2.String()), tokB)
	readBody(t, r1)
	readBody(t, r2)
	names := func(h http.Header) []string {
		var out []string
		for k := range h {
			if k != "Date" {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	if a, b := names(r1.Header), names(r2.Header); !slices.Equal(a, b) {
		t.Fatalf("HEAD header sets differ: pulled by A %v, never pulled %v", a, b)
	}
	for _, k := range []string{"Etag", "Accept-Ranges", "Content-Type"} {
		if r1.Header.Get(k) == "" {
			t.Errorf("no %s", k)
		}
	}
	if r1.Header.Get("Etag") != `"`+h1.String()+`"` || r2.Header.Get("Etag") != `"`+h2.String()+`"` ||
		r1.Header.Get("Accept-Ranges") != r2.Header.Get("Accept-Ranges") || r1.Header.Get("Content-Type") != r2.Header.Get("Content-Type") {
		t.Fatalf("HEAD responses tell B which digests another tenant pulled:\npulled by A:  %v\nnever pulled: %v", r1.Header, r2.Header)
	}
}

// The cache origin is scheme, host and port (and insecure): a plain-HTTP
// endpoint (whatever answers on port 80) does not share the HTTPS
// registry's entries, and a credential whose upstream cannot be
// determined is not cached at all.
func TestCacheOriginIncludesScheme(t *testing.T) {
	victim := store.Credential{Host: "registry.victim.com"}
	for _, tc := range []struct {
		name string
		cred store.Credential
		same bool
	}{
		{"plain http endpoint", store.Credential{Host: "registry.victim.com", Endpoint: "http://registry.victim.com", Insecure: true}, false},
		{"plain http endpoint, not insecure", store.Credential{Host: "registry.victim.com", Endpoint: "http://registry.victim.com"}, false},
		{"insecure host", store.Credential{Host: "registry.victim.com", Insecure: true}, false},
		{"other port", store.Credential{Host: "registry.victim.com", Endpoint: "https://registry.victim.com:8443"}, false},
		{"plain http on the https port", store.Credential{Host: "registry.victim.com", Endpoint: "http://registry.victim.com:443"}, false},
		{"explicit https endpoint", store.Credential{Host: "other.example", Endpoint: "https://registry.victim.com"}, true},
		{"explicit default port", store.Credential{Host: "other.example", Endpoint: "https://registry.victim.com:443"}, true},
	} {
		a, okA := cacheOrigin(victim)
		b, okB := cacheOrigin(tc.cred)
		if !okA || !okB {
			t.Fatalf("%s: origin not determined", tc.name)
		}
		if (a == b) != tc.same {
			t.Errorf("%s: origins %q and %q, want same=%v", tc.name, a, b, tc.same)
		}
	}
	if o, ok := cacheOrigin(store.Credential{Host: "", Endpoint: "ftp://x"}); ok {
		t.Errorf("an undeterminable upstream got origin %q", o)
	}
}

// Warm refuses an index whose children name bad digests before it asks
// the upstream for them.
func TestWarmRefusesBadChildDigest(t *testing.T) {
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:../../../../../../v2/x/manifests/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}`)
	d := sha(index)
	var asked sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.URL.Path, true)
		if r.URL.Path == "/v2/" {
			return
		}
		if r.URL.Path == "/v2/org/app/manifests/v1" || r.URL.Path == "/v2/org/app/manifests/"+d {
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			w.Header().Set("Docker-Content-Digest", d)
			w.Header().Set("Content-Length", fmt.Sprint(len(index)))
			if r.Method == http.MethodGet {
				w.Write(index)
			}
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	f, _ := newCacheFixture(t, 64<<20, CacheConfig{})
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, viewAs(srv.URL, "u", "p"), "p")
	_, err := f.proxy.Warm(context.Background(), ws.Name, upstreamHost+"/org/app:v1")
	var we *WarmError
	if !errors.As(err, &we) || !strings.Contains(we.Msg, "bad digest") {
		t.Fatalf("warm of an index with a bad child digest: %v", err)
	}
	asked.Range(func(k, _ any) bool {
		if p := k.(string); p != "/v2/" && p != "/v2/org/app/manifests/v1" && p != "/v2/org/app/manifests/"+d {
			t.Errorf("upstream asked for %s", p)
		}
		return true
	})
}

// Any update of a credential, not only a new secret, makes it confirm
// again with the upstream: after its username is changed to one the
// upstream refuses, a cached blob it pulled itself is refused too.
func TestCacheCredentialUpdateConfirmsAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		u       func() store.CredentialUpdate
		refused bool
	}{
		{"username", func() store.CredentialUpdate { n := "nobody"; return store.CredentialUpdate{Username: &n} }, true},
		{"realm hosts", func() store.CredentialUpdate {
			r := []string{"auth.test"}
			return store.CredentialUpdate{RealmHosts: &r}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
			_, h := up.PushBlobImage(t, "org/app", "v1", 64<<10)
			f, c := newCacheFixture(t, 64<<20, CacheConfig{})
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			f.install(ws, "web")
			tok := f.token(ws, "web", 10*time.Minute)
			if resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok); sha([]byte(readBody(t, resp))) != h.String() || !cached(c, h.String()) {
				t.Fatal("blob not pulled and cached")
			}
			if _, err := f.store.UpdateCredential(context.Background(), ws.Name, "reg", tc.u()); err != nil {
				t.Fatal(err)
			}
			up.ResetLog()
			resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
			readBody(t, resp)
			if (resp.StatusCode == http.StatusOK) == tc.refused {
				t.Fatalf("after the %s changed: %d", tc.name, resp.StatusCode)
			}
			heads := 0
			for _, r := range up.Log() {
				if r.Method == http.MethodHead {
					heads++
				}
			}
			if heads == 0 {
				t.Fatalf("served from the cache under a confirmation of the credential before its %s changed", tc.name)
			}
		})
	}
}

// A tag's confirmation confirms its digest too, so the tag TTL is capped
// at the confirmation TTL.
func TestCacheTagTTLCappedAtConfirmTTL(t *testing.T) {
	f, _ := newCacheFixture(t, 64<<20, CacheConfig{TagTTL: time.Hour, ConfirmTTL: time.Minute})
	if got := f.proxy.cache.TagTTL; got != time.Minute {
		t.Fatalf("tag TTL %v with a confirmation TTL of a minute", got)
	}
}

// A blob too large to be admitted is streamed to the client uncached,
// whole and verified.
func TestCacheTooLargeStreamedUncached(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
	_, h := up.PushBlobImage(t, "org/app", "v1", 512<<10)
	f, c := newCacheFixture(t, 1<<20, CacheConfig{})
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	for i := 0; i < 2; i++ {
		resp := f.get(http.MethodGet, blobPath(f, "org/app", h.String()), tok)
		if b := readBody(t, resp); resp.StatusCode != http.StatusOK || sha([]byte(b)) != h.String() {
			t.Fatalf("pull %d of a blob larger than a quarter of the cache: %d, %d bytes", i, resp.StatusCode, len(b))
		}
	}
	if st := c.Stats(); cached(c, h.String()) || st.Uncached != 2 || st.Bytes != 0 {
		t.Fatalf("cache after two too-large pulls: %+v", st)
	}
}
