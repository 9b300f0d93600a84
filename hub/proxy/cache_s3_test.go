package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/internal/testweed"
)

// s3Cache is a cache over a bucket of a real weed (client is
// srv.Client(), or a wrapper of it), with a staging directory of its own
// (one replica's).
func s3Cache(t *testing.T, client cache.S3API, bucket string, wrap func(cache.Storage) cache.Storage, log *slog.Logger) (*cache.Cache, *cache.S3) {
	t.Helper()
	s, err := cache.NewS3(cache.S3Config{Client: client, Bucket: bucket, StagingDir: t.TempDir(),
		RetryAfter: 300 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var st cache.Storage = s
	if wrap != nil {
		st = wrap(s)
	}
	c, err := cache.Open(context.Background(), st, 256<<20, cache.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// replica is a second hub proxy over the fixture's store and keys (a
// hub replica on the same database), with a cache of its own.
type replica struct {
	url   string
	audit *memRecorder
	logs  *testlog.Buffer
}

func (f *fixture) replica(t *testing.T, cfg CacheConfig) *replica {
	t.Helper()
	r := &replica{audit: &memRecorder{}, logs: &testlog.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.StaleWindow == 0 {
		cfg.StaleWindow = DefaultStaleWindow
	}
	p := New(f.store, f.sealer, f.keys, r.audit, WithLogger(log), WithClock(f.now),
		WithPool(upstream.NewPool(upstream.WithClock(f.now))), WithCache(cfg))
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// getAt sends a GET with an install token to a hub at base.
func getAt(t *testing.T, base, path, tok string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("pullgate", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, b
}

func upstreamHeads(up *testupstream.Registry, suffix string) int {
	n := 0
	for _, r := range up.Log() {
		if r.Method == http.MethodHead && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

// Two replicas share one bucket. Concurrent cold pulls of one blob
// through both fetch it from the upstream at most once per replica; a
// blob one replica cached is served by the other without an upstream
// GET, after that replica confirmed it with its own install's
// credential (a HEAD); a tenant whose credential the upstream refuses
// gets the refusal from the replica that never saw the blob, not the
// bytes.
func TestCacheS3ReplicasShareBucket(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "s3-SECRET-pw"))
	_, hot := up.PushBlobImage(t, "org/app", "v1", 8<<20)
	_, shared := up.PushBlobImage(t, "org/app", "v2", 3<<20)

	ca, _ := s3Cache(t, srv.Client(), bucket, nil, slog.New(slog.DiscardHandler))
	cb, _ := s3Cache(t, srv.Client(), bucket, nil, slog.New(slog.DiscardHandler))
	f := newFixture(t, WithCache(CacheConfig{Cache: ca, StaleWindow: DefaultStaleWindow}))
	b := f.replica(t, CacheConfig{Cache: cb})
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	up.ResetLog()

	// Concurrent cold pulls through both replicas.
	const n = 12
	var wg sync.WaitGroup
	var bad atomic.Value
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := f.hub.URL
			if i%2 == 1 {
				base = b.url
			}
			code, body := getAt(t, base, blobPath(f, "org/app", hot.String()), tok)
			if code != http.StatusOK || sha(body) != hot.String() {
				bad.Store(fmt.Sprintf("replica %d: %d, %d bytes", i%2, code, len(body)))
			}
		}()
	}
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	gets := upstreamGets(up, "/blobs/"+hot.String())
	if gets < 1 || gets > 2 {
		t.Fatalf("%d upstream GETs of one blob for %d concurrent cold pulls through 2 replicas, want 1 or 2 (at most one per replica)", gets, n)
	}
	t.Logf("concurrent cold pulls through 2 replicas: %d upstream GET(s)", gets)

	// Cached through A, served by B: no upstream GET, one HEAD (B's own
	// confirmation), and B's audit says hit.
	if code, body := getAt(t, f.hub.URL, blobPath(f, "org/app", shared.String()), tok); code != http.StatusOK || sha(body) != shared.String() {
		t.Fatalf("A: %d", code)
	}
	up.ResetLog()
	if code, body := getAt(t, b.url, blobPath(f, "org/app", shared.String()), tok); code != http.StatusOK || sha(body) != shared.String() {
		t.Fatalf("B: %d, %d bytes", code, len(body))
	}
	if g, h := upstreamGets(up, "/blobs/"+shared.String()), upstreamHeads(up, "/blobs/"+shared.String()); g != 0 || h != 1 {
		t.Fatalf("B served A's entry with %d upstream GETs and %d HEADs, want 0 and 1 (its own confirmation)", g, h)
	}
	// The audit event is recorded once the handler returns, which may be
	// after the client has read the body.
	hit := false
	for deadline := time.Now().Add(10 * time.Second); !hit && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range b.audit.all() {
			if e.Reference == shared.String() && e.Cache == cacheHit {
				hit = true
			}
		}
	}
	if !hit {
		t.Fatal("B's audit does not say hit for the entry A cached")
	}

	// Another tenant on B, whose credential the upstream refuses: the
	// refusal, not A's bytes.
	wsM := f.workspace("globex")
	f.credential(wsM, "reg", upstreamHost, up, "not-the-password")
	f.install(wsM, "web")
	tokM := f.token(wsM, "web", 10*time.Minute)
	_, other := up.PushBlobImage(t, "org/app", "v3", 1<<20)
	if code, _ := getAt(t, f.hub.URL, blobPath(f, "org/app", other.String()), tok); code != http.StatusOK {
		t.Fatalf("A: %d", code)
	}
	if code, body := getAt(t, b.url, blobPath(f, "org/app", other.String()), tokM); code == http.StatusOK || sha(body) == other.String() {
		t.Fatalf("a tenant without access got %d, %d bytes of an entry another replica cached", code, len(body))
	}
}

// racyStorage runs hook after the first Open of a key that finds
// nothing: another replica commits the entry right then, between the
// proxy's lookup and its fill.
type racyStorage struct {
	cache.Storage
	once sync.Once
	hook func()
}

// Shared: the wrapped storage is a bucket other replicas write.
func (r *racyStorage) Shared() bool { return true }

func (r *racyStorage) Open(ctx context.Context, k cache.Key) (cache.Blob, error) {
	b, err := r.Storage.Open(ctx, k)
	if err == cache.ErrNotFound {
		r.once.Do(r.hook)
	}
	return b, err
}

// An entry that another replica commits between this replica's lookup
// (nothing there) and its fill (the entry is there) is still confirmed
// with the install's own credential before it is served: a tenant the
// upstream refuses gets the refusal. (Before, a fill that found a
// committed entry served it unconfirmed.)
func TestCacheS3EntryAppearingBeforeFillIsConfirmed(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "race-SECRET-pw"))
	_, blob := up.PushBlobImage(t, "org/app", "v1", 1<<20)

	other, _ := s3Cache(t, srv.Client(), bucket, nil, slog.New(slog.DiscardHandler))
	fa := newFixture(t, WithCache(CacheConfig{Cache: other, StaleWindow: DefaultStaleWindow}))
	wsA := fa.workspace("acme")
	fa.credential(wsA, "reg", upstreamHost, up, up.Password)
	fa.install(wsA, "web")
	tokA := fa.token(wsA, "web", 10*time.Minute)

	hook := func() {
		// Replica A pulls (and commits) the blob now.
		if code, _ := getAt(t, fa.hub.URL, blobPath(fa, "org/app", blob.String()), tokA); code != http.StatusOK {
			t.Errorf("replica A: %d", code)
		}
	}
	racy := &racyStorage{hook: hook}
	cb, _ := s3Cache(t, srv.Client(), bucket, func(s cache.Storage) cache.Storage { racy.Storage = s; return racy }, slog.New(slog.DiscardHandler))
	fb := newFixture(t, WithCache(CacheConfig{Cache: cb, StaleWindow: DefaultStaleWindow}))
	wsM := fb.workspace("globex")
	fb.credential(wsM, "reg", upstreamHost, up, "not-the-password")
	fb.install(wsM, "web")
	tokM := fb.token(wsM, "web", 10*time.Minute)

	code, body := getAt(t, fb.hub.URL, blobPath(fb, "org/app", blob.String()), tokM)
	if code == http.StatusOK || sha(body) == blob.String() {
		t.Fatalf("a tenant without access got %d, %d bytes of an entry that appeared before its fill", code, len(body))
	}
	for _, e := range fb.audit.all() {
		if e.Cache != "" {
			t.Fatalf("the refused request was answered by the cache: %+v", e)
		}
	}
}

// The object store stops: pulls of cached and uncached blobs still
// succeed, from the upstream, with a log line and a metric; it comes
// back: the cache serves again, without a restart.
func TestCacheS3StoreDownFallsBackToUpstream(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "down-SECRET-pw"))
	_, cachedBlob := up.PushBlobImage(t, "org/app", "v1", 2<<20)
	_, coldBlob := up.PushBlobImage(t, "org/app", "v2", 2<<20)

	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, s := s3Cache(t, srv.Client(), bucket, nil, log)
	m := metrics.New()
	f := newFixture(t, WithMetrics(m), WithCache(CacheConfig{Cache: c, StaleWindow: DefaultStaleWindow}))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)

	pull := func(d string) {
		t.Helper()
		code, body := getAt(t, f.hub.URL, blobPath(f, "org/app", d), tok)
		if code != http.StatusOK || sha(body) != d {
			t.Fatalf("GET %s: %d, %d bytes", d, code, len(body))
		}
	}
	pull(cachedBlob.String())
	up.ResetLog()
	pull(cachedBlob.String())
	if g := upstreamGets(up, "/blobs/"+cachedBlob.String()); g != 0 {
		t.Fatalf("a hit went upstream: %d GETs", g)
	}

	srv.Stop()
	for range 3 {
		pull(cachedBlob.String())
		pull(coldBlob.String())
	}
	if g := upstreamGets(up, "/blobs/"+cachedBlob.String()); g != 3 {
		t.Fatalf("with the store down: %d upstream GETs of the cached blob for 3 pulls, want 3", g)
	}
	if s.Available() || c.Stats().StoreAvailable || c.Stats().StoreErrors == 0 {
		t.Fatalf("store down, but stats say available=%v errors=%d", c.Stats().StoreAvailable, c.Stats().StoreErrors)
	}
	if v := testutil.ToFloat64(m.CacheFallbacks); v < 6 {
		t.Fatalf("pullgate_cache_storage_fallbacks_total = %v, want at least 6", v)
	}
	if !strings.Contains(logs.String(), "cache object store unavailable") {
		t.Fatalf("no log line says the store is unavailable:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "cache object store unavailable"); n != 1 {
		t.Errorf("%d log lines say the store is unavailable, want 1 per outage", n)
	}

	srv.Restart()
	time.Sleep(400 * time.Millisecond) // the storage's rest after a failure
	up.ResetLog()
	pull(cachedBlob.String())
	if g := upstreamGets(up, "/blobs/"+cachedBlob.String()); g != 0 {
		t.Fatalf("store back, but the cached blob went upstream: %d GETs", g)
	}
	pull(coldBlob.String()) // a miss now fills the store
	up.ResetLog()
	pull(coldBlob.String())
	if g := upstreamGets(up, "/blobs/"+coldBlob.String()); g != 0 {
		t.Fatalf("store back, but a blob filled after it came back went upstream again: %d GETs", g)
	}
	if !s.Available() || !strings.Contains(logs.String(), "cache object store available again") {
		t.Fatalf("store back, but available=%v; logs:\n%s", s.Available(), logs.String())
	}
	if strings.Contains(logs.String(), srv.SecretKey) {
		t.Fatal("the store's secret key is in the logs")
	}
}
