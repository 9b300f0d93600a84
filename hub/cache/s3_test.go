package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/cache/storagetest"
	"github.com/pullgate/pullgate/internal/testweed"
)

// s3Backing is a prefix of a bucket on a real weed; every Open gets a
// staging directory of its own, as every replica has.
type s3Backing struct {
	srv    *testweed.Server
	bucket string
	prefix string
}

func (b s3Backing) Open(t *testing.T) cache.Storage {
	t.Helper()
	s, err := cache.NewS3(cache.S3Config{Client: b.srv.Client(), Bucket: b.bucket, Prefix: b.prefix,
		StagingDir: t.TempDir(), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3Conformance runs the storage suite against SeaweedFS: one
// server and bucket, a fresh prefix per test; the large entry takes a
// three-part multipart upload.
func TestS3Conformance(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	n := 0
	storagetest.Run(t, func(t *testing.T) storagetest.Backing {
		n++
		return s3Backing{srv: srv, bucket: bucket, prefix: "t" + strconv.Itoa(n) + "/"}
	}, storagetest.Options{LargeSize: 12 << 20})
}

// gatedFetch serves b, holding the body after its first half until gate
// is closed.
func gatedFetch(b []byte, gate chan struct{}) cache.FetchFunc {
	return func(ctx context.Context) (cache.Upstream, error) {
		half := len(b) / 2
		body := io.MultiReader(bytes.NewReader(b[:half]), readerFunc(func([]byte) (int, error) {
			select {
			case <-gate:
				return 0, io.EOF
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}), bytes.NewReader(b[half:]))
		return cache.Upstream{Body: io.NopCloser(body), Size: int64(len(b)), MediaType: "application/octet-stream"}, nil
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// The object store goes away: a fill whose upload fails still gives its
// readers every (verified) byte, uncached; a replica that starts
// meanwhile starts with an empty index; once the store is back, that
// replica finds the entries the store kept.
func TestS3CacheStoreOutage(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	open := func() *cache.Cache {
		s, err := cache.NewS3(cache.S3Config{Client: srv.Client(), Bucket: bucket, StagingDir: t.TempDir(), RetryAfter: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.Open(context.Background(), s, 64<<20)
		if err != nil {
			t.Fatalf("cache.Open: %v", err)
		}
		return c
	}
	c := open()
	ctx := context.Background()
	a, da := storagetest.Content(t, 300_000)
	ka := cache.Key{Origin: "https://registry.test:443", Digest: da}
	r, _, err := c.Fill(ctx, ka, gatedFetch(a, closed()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("fill A: %d bytes, %v", len(got), err)
	}
	r.Close()
	if !c.Has(ka) {
		t.Fatal("A not committed")
	}

	b, db := storagetest.Content(t, 400_000)
	kb := cache.Key{Origin: "https://registry.test:443", Digest: db}
	gate := make(chan struct{})
	r, _, err = c.Fill(ctx, kb, gatedFetch(b, gate))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	close(gate)
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("a fill whose upload failed: %d of %d bytes, %v; want all of them", len(got), len(b), err)
	}
	st := c.Stats()
	if st.Uncached != 1 || st.StoreErrors == 0 || st.StoreAvailable || c.Has(kb) {
		t.Fatalf("after a failed upload: %+v, has B %v; want B uncached, a store error, the store unavailable", st, c.Has(kb))
	}
	// A hit on A fails fast (the storage rests), for the proxy to go
	// upstream.
	if _, _, err := c.Lookup(ctx, ka); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Lookup with the store down: %v, want ErrUnavailable", err)
	}

	c2 := open() // a replica starting while the store is down
	if st := c2.Stats(); st.Entries != 0 || st.StoreErrors == 0 {
		t.Fatalf("replica started during the outage: %+v", st)
	}
	srv.Restart()
	time.Sleep(300 * time.Millisecond)
	r, ok, err := c2.Lookup(ctx, ka)
	if err != nil || !ok || !r.Hit() {
		t.Fatalf("store back: Lookup of A = %v, %v; want a hit from the store", ok, err)
	}
	got, err = io.ReadAll(r.Blob())
	r.Close()
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("A from the store: %d bytes, %v", len(got), err)
	}
	if _, ok, _ := c2.Lookup(ctx, kb); ok {
		t.Fatal("B, whose upload failed, is in the store")
	}

	// A replica whose cap holds one of the bucket's two entries indexes
	// the newest and deletes neither: the other replicas may use them.
	r, _, err = c2.Fill(ctx, kb, gatedFetch(b, closed()))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	r.Close()
	small, err := cache.NewS3(cache.S3Config{Client: srv.Client(), Bucket: bucket, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c3, err := cache.Open(ctx, small, 450_000)
	if err != nil {
		t.Fatal(err)
	}
	if st := c3.Stats(); st.Entries != 1 || st.Evictions != 0 || !c3.Has(kb) {
		t.Fatalf("small replica at start: %+v, has B %v; want the newest entry (B) indexed, nothing evicted", st, c3.Has(kb))
	}
	for _, k := range []cache.Key{ka, kb} {
		if blob, err := small.Open(ctx, k); err != nil {
			t.Fatalf("entry %s gone from the bucket after a small replica started: %v", k.Digest, err)
		} else {
			blob.Close()
		}
	}
}

func closed() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
