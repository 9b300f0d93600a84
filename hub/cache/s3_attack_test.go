package cache_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/cache/storagetest"
	"github.com/pullgate/pullgate/internal/testweed"
)

const attackOrigin = "https://registry.test:443"

// objectKey is where S3 stores k under prefix (the documented layout).
func objectKey(prefix string, k cache.Key) string {
	alg, hex, _ := bytes.Cut([]byte(k.Digest), []byte(":"))
	return prefix + "blobs/" + base64.RawURLEncoding.EncodeToString([]byte(k.Origin)) + "/" + string(alg) + "/" + string(hex)
}

func newS3(t *testing.T, client cache.S3API, bucket, prefix string) *cache.S3 {
	t.Helper()
	s, err := cache.NewS3(cache.S3Config{Client: client, Bucket: bucket, Prefix: prefix, StagingDir: t.TempDir(),
		PartSize: 5 << 20, RetryAfter: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openCache opens a cache over s, or fails the test.
func openCache(t *testing.T, s cache.Storage, maxBytes int64) *cache.Cache {
	t.Helper()
	c, err := cache.Open(context.Background(), s, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fillAll(t *testing.T, c *cache.Cache, k cache.Key, b []byte) {
	t.Helper()
	if got, err := readFill(t, c, k, b); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("fill %s: %d bytes, %v", k.Digest, len(got), err)
	}
}

// readFill fills k from an upstream that sends b, and returns what its
// reader read.
func readFill(t *testing.T, c *cache.Cache, k cache.Key, b []byte) ([]byte, error) {
	t.Helper()
	r, _, err := c.Fill(context.Background(), k, gatedFetch(b, closed()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// noStagingLeft fails the test if a fill left a file in staging.
func noStagingLeft(t *testing.T, staging string) {
	t.Helper()
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Fatalf("%d staging files left behind", len(ents))
	}
}

func exists(t *testing.T, srv *testweed.Server, bucket, key string) bool {
	t.Helper()
	_, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil
}

// Attacks on the S3 storage, against one real SeaweedFS.
func TestS3Attacks(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)

	// A store may ignore Range (RFC 9110 lets any server, and gateways
	// in front of S3 do): after a Seek the re-GET then answers 200 with
	// the whole object. The reader must fail, not hand out the bytes
	// from offset 0 as those at the offset (ServeContent would send them
	// as the requested range, marked complete).
	t.Run("RangeIgnored", func(t *testing.T) {
		target, _ := url.Parse(srv.Endpoint)
		rp := httputil.NewSingleHostReverseProxy(target)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
				rp.ServeHTTP(w, r)
				return
			}
			// The whole object, as a store that ignores Range sends it.
			key := r.URL.Path[len("/"+bucket+"/"):]
			out, err := srv.Client().GetObject(r.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer out.Body.Close()
			w.Header().Set("Content-Length", strconv.FormatInt(aws.ToInt64(out.ContentLength), 10))
			w.Header().Set("ETag", aws.ToString(out.ETag))
			io.Copy(w, out.Body)
		}))
		defer front.Close()
		client := s3.New(s3.Options{BaseEndpoint: aws.String(front.URL), Region: srv.Region, UsePathStyle: true,
			Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
			RetryMaxAttempts:           1,
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		})
		s := newS3(t, client, bucket, "range/")
		b, d := storagetest.Content(t, 200_000)
		k := cache.Key{Origin: attackOrigin, Digest: d}
		w, err := s.Create(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Commit(""); err != nil {
			t.Fatal(err)
		}
		blob, err := s.Open(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		defer blob.Close()
		if _, err := blob.Seek(150_000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(blob, 1000))
		if err == nil && !bytes.Equal(got, b[150_000:151_000]) {
			t.Fatalf("after Seek(150000) through a store that ignores Range: %d bytes, no error, and not the bytes at 150000", len(got))
		}
		if err == nil {
			t.Fatal("a store that ignores Range gave the right bytes: the test's front does not ignore Range")
		}
	})

	// An object in the prefix whose HEAD the store refuses (here one
	// written with a customer key, SSE-C, which cannot be read without
	// it; a bucket policy or a KMS key the hub may not use does the same)
	// must not stop a replica from starting: it is skipped like any object
	// that is no entry.
	t.Run("UnreadableObjectAtStart", func(t *testing.T) {
		prefix := "ssec/"
		b, d := storagetest.Content(t, 10_000)
		k := cache.Key{Origin: attackOrigin, Digest: d}
		ckey := bytes.Repeat([]byte{7}, 32)
		sum := md5.Sum(ckey)
		_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey(prefix, k)),
			Body: bytes.NewReader(b), Metadata: map[string]string{"pullgate-origin": url.QueryEscape(attackOrigin)},
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(base64.StdEncoding.EncodeToString(ckey)),
			SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		if err != nil {
			t.Skipf("this store refuses SSE-C: %v", err)
		}
		if _, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey(prefix, k))}); err == nil {
			t.Skip("this store answers a HEAD of an SSE-C object without its key")
		}
		good, dg := storagetest.Content(t, 10_000)
		kg := cache.Key{Origin: attackOrigin, Digest: dg}
		s := newS3(t, srv.Client(), bucket, prefix)
		w, _ := s.Create(context.Background(), kg)
		w.Write(good)
		if err := w.Commit(""); err != nil {
			t.Fatal(err)
		}
		c, err := cache.Open(context.Background(), newS3(t, srv.Client(), bucket, prefix), 64<<20)
		if err != nil {
			t.Fatalf("a replica does not start because of one unreadable object in its prefix: %v", err)
		}
		if !c.Has(kg) || c.Has(k) {
			t.Fatalf("index at start: good entry %v, unreadable object %v; want only the good one", c.Has(kg), c.Has(k))
		}
	})

	// An entry in the bucket that is too large for this replica (another
	// replica with a larger --cache-size filled it, or a stray object)
	// must not make this replica evict, that is delete from the shared
	// bucket, every entry it indexes.
	t.Run("LargeSharedEntry", func(t *testing.T) {
		prefix := "large/"
		big := newS3(t, srv.Client(), bucket, prefix)
		cBig := openCache(t, big, 64<<20)
		small := newS3(t, srv.Client(), bucket, prefix)
		cSmall := openCache(t, small, 1<<20)
		x, dx := storagetest.Content(t, 200_000)
		y, dy := storagetest.Content(t, 200_000)
		kx, ky := cache.Key{Origin: attackOrigin, Digest: dx}, cache.Key{Origin: attackOrigin, Digest: dy}
		fillAll(t, cSmall, kx, x)
		fillAll(t, cSmall, ky, y)
		z, dz := storagetest.Content(t, 3<<20)
		kz := cache.Key{Origin: attackOrigin, Digest: dz}
		fillAll(t, cBig, kz, z)

		r, ok, err := cSmall.Lookup(context.Background(), kz)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got, _ := io.ReadAll(r.Blob())
			r.Close()
			if !bytes.Equal(got, z) {
				t.Fatalf("large shared entry: %d bytes, not the entry", len(got))
			}
		}
		for _, k := range []cache.Key{kx, ky} {
			if !exists(t, srv, bucket, objectKey(prefix, k)) {
				t.Fatalf("a 3 MiB entry in the bucket made a 1 MiB replica delete %s from the shared bucket", k.Digest)
			}
		}
		if st := cSmall.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("small replica indexes %d bytes over its cap of %d", st.Bytes, st.MaxBytes)
		}
	})

	// A tenant's registry sends large blobs to fill the staging disk (or
	// the disk fails): a fill whose entry cannot be written must still
	// give its readers every verified byte, uncached, as a fill that does
	// not fit the cap does, and leave no staging file behind. (Before,
	// every reader of it, any tenant's, got an error.)
	t.Run("StagingDiskFull", func(t *testing.T) {
		staging := t.TempDir()
		s, err := cache.NewS3(cache.S3Config{Client: srv.Client(), Bucket: bucket, Prefix: "full/", StagingDir: staging,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c := openCache(t, fullDisk{Storage: s, room: 1 << 20}, 64<<20)
		b, d := storagetest.Content(t, 3<<20)
		k := cache.Key{Origin: attackOrigin, Digest: d}
		got, err := readFill(t, c, k, b)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("a fill whose staging disk is full: %d of %d bytes, %v; want all of them", len(got), len(b), err)
		}
		if st := c.Stats(); st.Uncached != 1 || c.Has(k) {
			t.Fatalf("after a full staging disk: %+v, has %v; want the fill uncached", st, c.Has(k))
		}
		noStagingLeft(t, staging)
	})

	// A bucket of many entries (every replica's; a tenant can add many
	// tiny ones by pulling tiny blobs from its own registry): a replica
	// starting on it indexes for its walk budget and starts, instead of
	// sending a HEAD per object first (0.9 ms each on loopback, far more
	// over a network: a startup probe kills the hub). What it did not
	// index is found when pulled.
	t.Run("ManyObjectsAtStart", func(t *testing.T) {
		prefix := "many/"
		const n = 2500
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		keys := make([]cache.Key, n)
		for i := range n {
			keys[i] = cache.Key{Origin: attackOrigin, Digest: fmt.Sprintf("sha256:%064x", i)}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey(prefix, keys[i])),
					Body: bytes.NewReader([]byte{1}), Metadata: map[string]string{"pullgate-origin": url.QueryEscape(attackOrigin)}})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		s := newS3(t, srv.Client(), bucket, prefix)
		began := time.Now()
		c, err := cache.Open(context.Background(), s, 64<<20, cache.WithSharedWalkBudget(100*time.Millisecond))
		took := time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		t.Logf("start on %d objects with a 100 ms walk budget: %s, %d indexed", n, took, st.Entries)
		if st.Entries >= n || !s.Available() {
			t.Fatalf("start on %d objects with a 100 ms walk budget: %d indexed in %s (store available %v); want it to stop early", n, st.Entries, took, s.Available())
		}
		r, ok, err := c.Lookup(context.Background(), keys[n-1])
		if err != nil || !ok {
			t.Fatalf("an entry not indexed at start: Lookup = %v, %v; want it found in the bucket", ok, err)
		}
		r.Close()
	})

	// One part of a multipart upload fails: the readers still get every
	// verified byte, nothing becomes visible, the upload is aborted (no
	// parts left in the bucket) and no staging file stays behind.
	t.Run("MultipartPartFails", func(t *testing.T) {
		staging := t.TempDir()
		fc := &failPart{S3API: srv.Client(), part: 2}
		s, err := cache.NewS3(cache.S3Config{Client: fc, Bucket: bucket, Prefix: "mp/", StagingDir: staging, PartSize: 5 << 20,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c := openCache(t, s, 256<<20)
		b, d := storagetest.Content(t, 12<<20)
		k := cache.Key{Origin: attackOrigin, Digest: d}
		got, err := readFill(t, c, k, b)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("a fill whose upload's part 2 failed: %d of %d bytes, %v", len(got), len(b), err)
		}
		if c.Has(k) || exists(t, srv, bucket, objectKey("mp/", k)) {
			t.Fatal("an entry whose upload failed is visible")
		}
		ups, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String("mp/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Fatalf("%d multipart uploads left after a failed part", len(ups.Uploads))
		}
		noStagingLeft(t, staging)
	})

	// A tenant's registry sends bytes that do not match the digest (same
	// size; and more than announced): the readers get an error, not an
	// end of file, nothing is uploaded, no staging file stays.
	t.Run("DigestMismatch", func(t *testing.T) {
		staging := t.TempDir()
		s, err := cache.NewS3(cache.S3Config{Client: srv.Client(), Bucket: bucket, Prefix: "bad/", StagingDir: staging, PartSize: 5 << 20,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c := openCache(t, s, 256<<20)
		for _, size := range []int{300_000, 7 << 20} {
			_, d := storagetest.Content(t, size)
			other, _ := storagetest.Content(t, size)
			k := cache.Key{Origin: attackOrigin, Digest: d}
			got, err := readFill(t, c, k, other)
			if !errors.Is(err, cache.ErrDigestMismatch) || len(got) >= size {
				t.Fatalf("%d wrong bytes: read %d, %v; want fewer than all and ErrDigestMismatch", size, len(got), err)
			}
			if c.Has(k) || exists(t, srv, bucket, objectKey("bad/", k)) {
				t.Fatalf("%d wrong bytes were committed", size)
			}
		}
		noStagingLeft(t, staging)
	})

	// Stray objects in the prefix with metadata the hub did not write:
	// a media type that is no media type (line breaks, HTML) is dropped,
	// not served as a Content-Type.
	t.Run("StrayMetadata", func(t *testing.T) {
		prefix := "meta/"
		s := newS3(t, srv.Client(), bucket, prefix)
		for _, mt := range []string{"text/html\r\nSet-Cookie: a=b", "<script>", "application/vnd.oci.image.manifest.v1+json; x=\x00"} {
			b, d := storagetest.Content(t, 1000)
			k := cache.Key{Origin: attackOrigin, Digest: d}
			_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey(prefix, k)),
				Body: bytes.NewReader(b), Metadata: map[string]string{"pullgate-origin": url.QueryEscape(attackOrigin), "pullgate-media-type": url.QueryEscape(mt)}})
			if err != nil {
				t.Fatal(err)
			}
			blob, err := s.Open(context.Background(), k)
			if errors.Is(err, cache.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			blob.Close()
			if got := blob.Info().MediaType; got != "" {
				t.Fatalf("media type %q from a stray object's metadata taken as %q", mt, got)
			}
		}
	})
}

// fullDisk is a storage whose staging disk has room bytes: writes beyond
// fail as a full disk's do.
type fullDisk struct {
	cache.Storage
	room int64
}

func (f fullDisk) Shared() bool { return true }

func (f fullDisk) Create(ctx context.Context, k cache.Key) (cache.Writer, error) {
	w, err := f.Storage.Create(ctx, k)
	if err != nil {
		return nil, err
	}
	return &fullWriter{Writer: w, room: f.room}, nil
}

type fullWriter struct {
	cache.Writer
	room int64
}

func (w *fullWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.room {
		n, _ := w.Writer.Write(p[:w.room])
		w.room = 0
		return n, syscall.ENOSPC
	}
	w.room -= int64(len(p))
	return w.Writer.Write(p)
}

// A store that accepts connections but never answers (overloaded, or a
// half-dead load balancer). Once its rest is over, one call probes it;
// the calls meanwhile fail at once for the upstream to answer, instead
// of every concurrent request waiting out the store's timeouts again
// every RetryAfter.
func TestS3HungStoreProbedByOneCall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var held sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			held.Lock()
			open = append(open, c)
			held.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		held.Lock()
		for _, c := range open {
			c.Close()
		}
		held.Unlock()
	})
	client := s3.New(s3.Options{BaseEndpoint: aws.String("http://" + l.Addr().String()), Region: "us-east-1", UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "hung-SECRET", ""),
		HTTPClient:       &http.Client{Timeout: 500 * time.Millisecond},
		RetryMaxAttempts: 1})
	s, err := cache.NewS3(cache.S3Config{Client: client, Bucket: "pullgate-hung", StagingDir: t.TempDir(),
		RetryAfter: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	k := cache.Key{Origin: attackOrigin, Digest: "sha256:" + strings.Repeat("ab", 32)}
	if _, err := s.Open(context.Background(), k); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("first call to a hung store: %v, want ErrUnavailable", err)
	}
	time.Sleep(350 * time.Millisecond) // the rest is over
	before := conns.Load()
	const n = 20
	var wg sync.WaitGroup
	var slow atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			s.Open(context.Background(), k)
			if time.Since(began) > 250*time.Millisecond {
				slow.Add(1)
			}
		}()
	}
	wg.Wait()
	if got, sl := conns.Load()-before, slow.Load(); got > 1 || sl > 1 {
		t.Fatalf("%d concurrent calls after the rest: %d reached the hung store and %d waited for its timeout; want one probe", n, got, sl)
	}
}

// failPart fails one part of every multipart upload, as a store that
// drops a connection in the middle of an upload does.
type failPart struct {
	cache.S3API
	part int32
}

func (f *failPart) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if aws.ToInt32(in.PartNumber) == f.part {
		return nil, errors.New("connection reset by peer (injected)")
	}
	return f.S3API.UploadPart(ctx, in, opts...)
}
