package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/internal/testweed"
)

// countingS3 counts the GETs the hub sends to a real store.
type countingS3 struct {
	cache.S3API
	gets atomic.Int64
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.gets.Add(1)
	return c.S3API.GetObject(ctx, in, opts...)
}

// Hits served from the object store, attacked by a tenant that may read
// the blob: a Range of many small ranges must not turn one request into
// a GET of the store per range; a single range is exactly its bytes; a
// store that dies in the middle of a hit never gives the client a body
// that looks complete.
func TestCacheS3HitAttacks(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "range-SECRET-pw"))
	_, blob := up.PushBlobImage(t, "org/app", "v1", 24<<20)

	cs := &countingS3{S3API: srv.Client()}
	c, s := s3Cache(t, cs, bucket, nil, slog.New(slog.DiscardHandler))
	m := metrics.New()
	f := newFixture(t, WithMetrics(m), WithCache(CacheConfig{Cache: c, StaleWindow: DefaultStaleWindow}))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", 10*time.Minute)
	path := blobPath(f, "org/app", blob.String())
	resp := f.get(http.MethodGet, path, tok)
	full, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sha(full) != blob.String() {
		t.Fatalf("cold pull: %d, %d bytes", resp.StatusCode, len(full))
	}
	if !cached(c, blob.String()) {
		t.Fatal("not cached")
	}

	t.Run("ManyRanges", func(t *testing.T) {
		var rs []string
		for i := range 300 {
			off := i * 50_000
			rs = append(rs, fmt.Sprintf("%d-%d", off, off))
		}
		before := cs.gets.Load()
		resp := f.get(http.MethodGet, path, tok, "Range", "bytes="+strings.Join(rs, ","))
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		gets := cs.gets.Load() - before
		if gets > 3 {
			t.Fatalf("one request with %d ranges sent %d GETs to the object store (status %d, %d bytes)", len(rs), gets, resp.StatusCode, len(body))
		}
		if err != nil || (resp.StatusCode == http.StatusOK && !bytes.Equal(body, full)) {
			t.Fatalf("answer to many ranges: %d, %d bytes, %v", resp.StatusCode, len(body), err)
		}
		t.Logf("%d ranges: status %d, %d store GETs", len(rs), resp.StatusCode, gets)
	})

	t.Run("OneRange", func(t *testing.T) {
		resp := f.get(http.MethodGet, path, tok, "Range", "bytes=20000000-20000999")
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, full[20_000_000:20_001_000]) {
			t.Fatalf("one range from the store: %d %q, %d bytes, %v", resp.StatusCode, resp.Header.Get("Content-Range"), len(body), err)
		}
	})

	// Digests the cache cannot verify (sha512, which the routes accept)
	// go upstream uncached without asking the store, and are no storage
	// fallback: a tenant must not make the hub look up entries under an
	// algorithm no hub verified, nor fake a store outage in the metrics.
	t.Run("UnverifiableAlgorithm", func(t *testing.T) {
		before, fb := cs.gets.Load(), testutil.ToFloat64(m.CacheFallbacks)
		d := "sha512:" + strings.Repeat("ab", 64)
		for _, p := range []string{blobPath(f, "org/app", d), "/v2/" + upstreamHost + "/org/app/manifests/" + d} {
			resp := f.get(http.MethodGet, p, tok)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if gets, n := cs.gets.Load()-before, testutil.ToFloat64(m.CacheFallbacks)-fb; gets != 0 || n != 0 {
			t.Fatalf("requests for a sha512 digest: %d GETs of the object store, %v storage fallbacks; want none", gets, n)
		}
	})

	// Clients that go away in the middle of hits are no store outage: a
	// tenant aborting its downloads must not turn the cache off for
	// everyone.
	t.Run("ClientsGoAway", func(t *testing.T) {
		for range 5 {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.hub.URL+path, nil)
			req.SetBasicAuth("pullgate", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(resp.Body, make([]byte, 64<<10))
			cancel()
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
		if st := c.Stats(); !s.Available() || st.StoreErrors != 0 || s.Errors() != 0 {
			t.Fatalf("after clients went away mid-hit: available %v, %d store errors (%d in the storage)", s.Available(), st.StoreErrors, s.Errors())
		}
	})

	// A tenant whose credential points at a registry it runs, which
	// confirms every digest, asks a replica that never saw the blob: the
	// shared bucket holds it under the real upstream's origin, which the
	// tenant's credential does not reach, so it gets nothing from it.
	t.Run("LyingUpstreamOtherReplica", func(t *testing.T) {
		cb, _ := s3Cache(t, srv.Client(), bucket, nil, slog.New(slog.DiscardHandler))
		b := f.replica(t, CacheConfig{Cache: cb})
		wsM := f.workspace("mallory")
		f.credential(wsM, "reg", upstreamHost, liar(t), "any")
		f.install(wsM, "web")
		tokM := f.token(wsM, "web", 10*time.Minute)
		if code, body := getAt(t, b.url, path, tokM); code == http.StatusOK || bytes.Equal(body, full) {
			t.Fatalf("a tenant with a lying upstream got %d, %d bytes of the real upstream's entry through another replica", code, len(body))
		}
		for _, e := range b.audit.all() {
			if e.Workspace == "mallory" && (e.Cache == cacheHit || e.Cache == cacheStale) {
				t.Fatalf("answered from the cache: %+v", e)
			}
		}
	})

	t.Run("StoreDiesMidStream", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.hub.URL+path, nil)
		req.SetBasicAuth("pullgate", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("hit: %d", resp.StatusCode)
		}
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatal(err)
		}
		srv.Stop()
		rest, err := io.ReadAll(resp.Body)
		got := append(head, rest...)
		switch {
		case err == nil && !bytes.Equal(got, full):
			t.Fatalf("the store died mid-stream and the client got %d of %d bytes marked complete", len(got), len(full))
		case err == nil:
			t.Log("the whole blob was buffered before the store went (inconclusive)")
		default:
			t.Logf("the store died mid-stream: the client's read fails after %d bytes: %v", len(got), err)
		}
	})
}
