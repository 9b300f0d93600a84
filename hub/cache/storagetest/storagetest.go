// Package storagetest is the conformance suite of cache.Storage: every
// implementation runs it (Local over a directory, S3 over a real object
// store), so the cache's guarantees do not depend on which one a hub
// uses.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/cache"
)

// Backing is one store's contents (a directory, a bucket and prefix).
// Open returns a new Storage over it, as a restarted hub, or a second
// replica, would open it. It must not be called while a writer of an
// earlier Storage of the same Backing is in progress, except to
// simulate a crash.
type Backing interface {
	Open(t *testing.T) cache.Storage
}

// Options tunes the suite to a storage.
type Options struct {
	// LargeSize is the size of the suite's large entry: above a
	// storage's multipart threshold, where it has one (0: 1 MiB).
	LargeSize int
}

const (
	originA = "https://registry-a.test:443"
	originB = "https://registry-b.test:443"
)

// Run runs the suite. newBacking returns a fresh, empty backing for each
// test.
func Run(t *testing.T, newBacking func(t *testing.T) Backing, opts Options) {
	if opts.LargeSize <= 0 {
		opts.LargeSize = 1 << 20
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Backing, Options)
	}{
		{"CommitThenOpen", testCommitThenOpen},
		{"InvisibleUntilCommit", testInvisibleUntilCommit},
		{"ReadWhileGrowing", testReadWhileGrowing},
		{"Abort", testAbort},
		{"CrashLeavesNothing", testCrashLeavesNothing},
		{"Delete", testDelete},
		{"Seek", testSeek},
		{"OriginsSeparate", testOriginsSeparate},
		{"BadDigest", testBadDigest},
		{"Large", testLarge},
		{"SharedBacking", testSharedBacking},
		{"ConcurrentCommits", testConcurrentCommits},
		{"WalkStops", testWalkStops},
		{"Empty", testEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newBacking(t), opts)
		})
	}
}

// Content returns n random bytes and their digest.
func Content(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:])
}

// entry returns n random bytes and their key under originA.
func entry(t *testing.T, n int) ([]byte, cache.Key) {
	t.Helper()
	b, d := Content(t, n)
	return b, cache.Key{Origin: originA, Digest: d}
}

// create starts k in s, or fails the test.
func create(t *testing.T, s cache.Storage, k cache.Key) cache.Writer {
	t.Helper()
	w, err := s.Create(ctx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// put writes b under k in chunks and commits it.
func put(t *testing.T, s cache.Storage, k cache.Key, b []byte, mt string) {
	t.Helper()
	w, err := s.Create(ctx(t), k)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for off := 0; off < len(b); off += 100_000 {
		if _, err := w.Write(b[off:min(len(b), off+100_000)]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.Commit(mt); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// get reads k whole, checking its Info.
func get(t *testing.T, s cache.Storage, k cache.Key, want []byte, mt string) {
	t.Helper()
	b, err := s.Open(ctx(t), k)
	if err != nil {
		t.Fatalf("Open %v: %v", k, err)
	}
	defer b.Close()
	info := b.Info()
	if info.Origin != k.Origin || info.Digest != k.Digest || info.Size != int64(len(want)) || info.MediaType != mt {
		t.Fatalf("Info = %+v, want origin %s digest %s size %d media type %q", info, k.Origin, k.Digest, len(want), mt)
	}
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read %v: %v", k, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
}

func absent(t *testing.T, s cache.Storage, k cache.Key) {
	t.Helper()
	b, err := s.Open(ctx(t), k)
	if err == nil {
		b.Close()
		t.Fatalf("Open %v: an entry, want ErrNotFound", k)
	}
	if !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Open %v: %v, want ErrNotFound", k, err)
	}
}

func walk(t *testing.T, s cache.Storage) []cache.Info {
	t.Helper()
	var out []cache.Info
	if err := s.Walk(ctx(t), func(i cache.Info) error { out = append(out, i); return nil }); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Origin+out[a].Digest < out[b].Origin+out[b].Digest })
	return out
}

func testCommitThenOpen(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 300_000)
	before := time.Now().Add(-time.Minute)
	put(t, s, k, b, "application/vnd.oci.image.layer.v1.tar+gzip")
	get(t, s, k, b, "application/vnd.oci.image.layer.v1.tar+gzip")
	infos := walk(t, s)
	if len(infos) != 1 {
		t.Fatalf("Walk listed %d entries, want 1: %+v", len(infos), infos)
	}
	i := infos[0]
	if i.Key() != k || i.Size != int64(len(b)) || i.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("Walk: %+v, want %v size %d with its media type", i, k, len(b))
	}
	if i.Modified.Before(before) || i.Modified.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Walk: modified %v, want about now", i.Modified)
	}
	// A restarted hub sees the same.
	get(t, bk.Open(t), k, b, "application/vnd.oci.image.layer.v1.tar+gzip")
}

func testInvisibleUntilCommit(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 50_000)
	w := create(t, s, k)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	absent(t, s, k)
	if n := len(walk(t, s)); n != 0 {
		t.Fatalf("Walk listed %d entries before Commit", n)
	}
	if err := w.Commit(""); err != nil {
		t.Fatal(err)
	}
	get(t, s, k, b, "")
}

func testReadWhileGrowing(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 200_000)
	w := create(t, s, k)
	r, err := w.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, len(b))
	if _, err := w.Write(b[:1000]); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.ReadAt(buf[:1000], 0); n != 1000 || !bytes.Equal(buf[:1000], b[:1000]) {
		t.Fatalf("ReadAt of the first 1000 bytes written: %d bytes", n)
	}
	if _, err := w.Write(b[1000:]); err != nil {
		t.Fatal(err)
	}
	// A second reader opened later reads the same.
	r2, err := w.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := w.Commit("application/json"); err != nil {
		t.Fatal(err)
	}
	// Both readers stay valid after Commit.
	for i, ra := range []cache.ReaderAtCloser{r, r2} {
		n, err := ra.ReadAt(buf, 0)
		if n != len(b) || (err != nil && err != io.EOF) || !bytes.Equal(buf, b) {
			t.Fatalf("reader %d after Commit: %d bytes, %v", i, n, err)
		}
	}
}

func testAbort(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 50_000)
	w := create(t, s, k)
	r, err := w.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	absent(t, s, k)
	if n := len(walk(t, s)); n != 0 {
		t.Fatalf("Walk listed %d entries after Abort", n)
	}
	// A follower keeps what it was reading.
	buf := make([]byte, len(b))
	if n, _ := r.ReadAt(buf, 0); n != len(b) || !bytes.Equal(buf, b) {
		t.Fatalf("reader after Abort: %d bytes", n)
	}
	absent(t, bk.Open(t), k)
}

func testCrashLeavesNothing(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 80_000)
	w := create(t, s, k)
	if _, err := w.Write(b[:40_000]); err != nil {
		t.Fatal(err)
	}
	// The hub dies here: no Commit, no Abort. Restarted, it has nothing.
	s2 := bk.Open(t)
	absent(t, s2, k)
	if n := len(walk(t, s2)); n != 0 {
		t.Fatalf("Walk listed %d entries after a crash mid-fill", n)
	}
	put(t, s2, k, b, "")
	get(t, s2, k, b, "")
}

func testDelete(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 60_000)
	put(t, s, k, b, "")
	open, err := s.Open(ctx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := s.Delete(ctx(t), k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	absent(t, s, k)
	if n := len(walk(t, s)); n != 0 {
		t.Fatalf("Walk listed %d entries after Delete", n)
	}
	// A reader that had it open reads on (from the start, no seek).
	got, err := io.ReadAll(open)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("reader opened before Delete: %d bytes, %v", len(got), err)
	}
	if err := s.Delete(ctx(t), k); err != nil {
		t.Fatalf("Delete of an absent entry: %v", err)
	}
}

func testSeek(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 250_000)
	put(t, s, k, b, "")
	blob, err := s.Open(ctx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	// What http.ServeContent does: the size from SeekEnd, then a range.
	end, err := blob.Seek(0, io.SeekEnd)
	if err != nil || end != int64(len(b)) {
		t.Fatalf("Seek(0, End) = %d, %v; want %d", end, err, len(b))
	}
	for _, off := range []int64{100_000, 7, 249_999, 0} {
		if _, err := blob.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(blob, 1000))
		want := b[off:min(int64(len(b)), off+1000)]
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("after Seek(%d): %d bytes, %v; want %d bytes of the entry", off, len(got), err, len(want))
		}
	}
	pos, err := blob.Seek(-10, io.SeekEnd)
	if err != nil || pos != int64(len(b))-10 {
		t.Fatalf("Seek(-10, End) = %d, %v", pos, err)
	}
	got, err := io.ReadAll(blob)
	if err != nil || !bytes.Equal(got, b[len(b)-10:]) {
		t.Fatalf("the last 10 bytes: %x, %v", got, err)
	}
	if _, err := blob.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek before the start succeeded")
	}
}

func testOriginsSeparate(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, d := Content(t, 10_000)
	ka, kb := cache.Key{Origin: originA, Digest: d}, cache.Key{Origin: originB, Digest: d}
	put(t, s, ka, b, "a/a")
	absent(t, s, kb)
	put(t, s, kb, b, "b/b")
	get(t, s, ka, b, "a/a")
	get(t, s, kb, b, "b/b")
	infos := walk(t, s)
	if len(infos) != 2 || infos[0].Key() != ka || infos[1].Key() != kb || infos[0].MediaType != "a/a" || infos[1].MediaType != "b/b" {
		t.Fatalf("Walk: %+v, want one entry per origin", infos)
	}
	if err := s.Delete(ctx(t), ka); err != nil {
		t.Fatal(err)
	}
	absent(t, s, ka)
	get(t, s, kb, b, "b/b")
}

func testBadDigest(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	for _, d := range []string{"", "sha256", "sha256:../../etc", "sha256:a/b", "../sha256:00", "sha256:" + string(make([]byte, 3))} {
		k := cache.Key{Origin: originA, Digest: d}
		if w, err := s.Create(ctx(t), k); err == nil {
			w.Abort()
			t.Errorf("Create(%q) succeeded", d)
		}
		if b, err := s.Open(ctx(t), k); err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", d)
		}
		if err := s.Delete(ctx(t), k); err == nil {
			t.Errorf("Delete(%q) succeeded", d)
		}
	}
}

func testLarge(t *testing.T, bk Backing, opts Options) {
	s := bk.Open(t)
	b, k := entry(t, opts.LargeSize)
	put(t, s, k, b, "application/octet-stream")
	get(t, s, k, b, "application/octet-stream")
	infos := walk(t, s)
	if len(infos) != 1 || infos[0].Size != int64(len(b)) {
		t.Fatalf("Walk: %+v", infos)
	}
}

// testSharedBacking: what one replica commits, another one (a Storage
// opened over the same backing) reads, and a delete by one is seen by
// the other.
func testSharedBacking(t *testing.T, bk Backing, _ Options) {
	s1, s2 := bk.Open(t), bk.Open(t)
	b, k := entry(t, 30_000)
	absent(t, s2, k)
	put(t, s1, k, b, "x/y")
	get(t, s2, k, b, "x/y")
	if n := len(walk(t, s2)); n != 1 {
		t.Fatalf("the second storage's Walk listed %d entries, want 1", n)
	}
	if err := s2.Delete(ctx(t), k); err != nil {
		t.Fatal(err)
	}
	absent(t, s1, k)
}

// testConcurrentCommits: two replicas fill the same entry at once; both
// commit, and the entry is whole.
func testConcurrentCommits(t *testing.T, bk Backing, _ Options) {
	s1, s2 := bk.Open(t), bk.Open(t)
	b, k := entry(t, 400_000)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []cache.Storage{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Create(ctx(t), k)
			if err != nil {
				errs[i] = err
				return
			}
			for off := 0; off < len(b); off += 50_000 {
				if _, err := w.Write(b[off : off+50_000]); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = w.Commit("m/t")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	get(t, s1, k, b, "m/t")
	get(t, s2, k, b, "m/t")
	if n := len(walk(t, s1)); n != 1 {
		t.Fatalf("Walk listed %d entries, want 1", n)
	}
}

func testWalkStops(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	for range 3 {
		b, d := Content(t, 1000)
		put(t, s, cache.Key{Origin: originA, Digest: d}, b, "")
	}
	stop := errors.New("stop")
	n := 0
	err := s.Walk(ctx(t), func(cache.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Walk with fn failing: %d calls, %v; want 1 call and fn's error", n, err)
	}
}

func testEmpty(t *testing.T, bk Backing, _ Options) {
	s := bk.Open(t)
	b, k := entry(t, 0)
	put(t, s, k, b, "application/vnd.oci.empty.v1+json")
	get(t, s, k, b, "application/vnd.oci.empty.v1+json")
}
