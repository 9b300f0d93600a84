package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testOrigin is the upstream the test entries come from.
const testOrigin = "https://registry.test"

func content(t testing.TB, n int) ([]byte, Key) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, Key{Origin: testOrigin, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func open(t testing.TB, dir string, max int64) *Cache {
	t.Helper()
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), s, max)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upstream serves b, counting fetches; gate, when set, holds the body
// after the first half until it is closed.
type upstream struct {
	b       []byte
	fetches atomic.Int64
	gate    chan struct{}
}

func (u *upstream) fetch(ctx context.Context) (Upstream, error) {
	u.fetches.Add(1)
	half := len(u.b) / 2
	var body io.Reader = bytes.NewReader(u.b)
	if u.gate != nil {
		body = io.MultiReader(bytes.NewReader(u.b[:half]), gated{u.gate, ctx}, bytes.NewReader(u.b[half:]))
	}
	return Upstream{Body: io.NopCloser(body), Size: int64(len(u.b)), MediaType: "application/octet-stream"}, nil
}

type gated struct {
	ch  chan struct{}
	ctx context.Context
}

func (g gated) Read([]byte) (int, error) {
	select {
	case <-g.ch:
		return 0, io.EOF
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	}
}

func readAll(t testing.TB, r *Reader) ([]byte, error) {
	t.Helper()
	defer r.Close()
	return io.ReadAll(r)
}

func TestFillThenHit(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir(), 2<<20) // an entry may take a quarter
	b, d := content(t, 300<<10)
	u := &upstream{b: b}
	r, started, err := c.Fill(ctx, d, u.fetch)
	if err != nil || !started {
		t.Fatalf("fill: started=%v err=%v", started, err)
	}
	got, err := readAll(t, r)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("fill read: %d bytes, err %v", len(got), err)
	}
	r, ok, err := c.Lookup(ctx, d)
	if err != nil || !ok || !r.Hit() {
		t.Fatalf("lookup after fill: ok=%v err=%v", ok, err)
	}
	lb, isFile := r.Blob().(*LocalBlob)
	if !isFile || lb.OSFile() == nil {
		t.Fatal("a local hit is not an *os.File: no sendfile")
	}
	if r.Info().MediaType != "application/octet-stream" || r.Info().Size != int64(len(b)) {
		t.Fatalf("info %+v", r.Info())
	}
	got, err = readAll(t, r)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("hit read: %d bytes, err %v", len(got), err)
	}
	if u.fetches.Load() != 1 {
		t.Fatalf("%d fetches", u.fetches.Load())
	}
	// A restart finds the entry again.
	c2 := open(t, c.store.(*Local).dir, 1<<20)
	if st := c2.Stats(); st.Entries != 1 || st.Bytes != int64(len(b)) {
		t.Fatalf("after reopen: %+v", st)
	}
	if r, ok, _ := c2.Lookup(ctx, d); !ok || r.Info().MediaType != "application/octet-stream" {
		t.Fatal("entry or media type lost on reopen")
	} else {
		r.Close()
	}
}

// Concurrent readers of one digest share one fetch and read along the
// growing entry: they have the first half before the upstream sends the
// second.
func TestConcurrentFillsOneFetch(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir(), 8<<20)
	b, d := content(t, 1<<20)
	u := &upstream{b: b, gate: make(chan struct{})}
	const n = 16
	var wg sync.WaitGroup
	firstHalf := make(chan struct{}, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := c.Fill(ctx, d, u.fetch)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			half := make([]byte, len(b)/2)
			if _, err := io.ReadFull(r, half); err != nil {
				errs <- err
				return
			}
			firstHalf <- struct{}{}
			rest, err := io.ReadAll(r)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(append(half, rest...), b) {
				errs <- errors.New("wrong bytes")
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-firstHalf:
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d readers got the first half before the upstream finished: no read-along", i)
		}
	}
	close(u.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := u.fetches.Load(); got != 1 {
		t.Fatalf("%d upstream fetches for %d concurrent readers, want 1", got, n)
	}
	if st := c.Stats(); st.Entries != 1 || st.Filling != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCorruptUpstreamNeverCommitted(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		body func(b []byte) []byte
		size func(b []byte) int64
	}{
		{"flipped byte", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }, func(b []byte) int64 { return int64(len(b)) }},
		{"truncated, size unknown", func(b []byte) []byte { return b[:len(b)-1] }, func([]byte) int64 { return -1 }},
		{"extra bytes", func(b []byte) []byte { return append(bytes.Clone(b), 0) }, func(b []byte) int64 { return int64(len(b)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir, 8<<20)
			b, d := content(t, 200<<10)
			bad := tc.body(b)
			fetch := func(context.Context) (Upstream, error) {
				return Upstream{Body: io.NopCloser(bytes.NewReader(bad)), Size: tc.size(b)}, nil
			}
			r, _, err := c.Fill(ctx, d, fetch)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := readAll(t, r); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("reader of a corrupt fill ended with %v, want ErrDigestMismatch", err)
			}
			if _, ok, _ := c.Lookup(ctx, d); ok {
				t.Fatal("corrupt entry is in the cache")
			}
			if _, err := c.store.Open(ctx, d); !errors.Is(err, ErrNotFound) {
				t.Fatalf("corrupt entry on disk: %v", err)
			}
			// Nothing left in tmp either.
			if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
				t.Fatalf("%d files left in tmp", len(ents))
			}
		})
	}
}

// A half-written entry (a crash mid-fill) is never served after a restart.
func TestCrashLeavesNoEntry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, d := content(t, 64<<10)
	w, err := s.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b[:1000]) // the hub dies here: no Commit, no Abort
	c := open(t, dir, 1<<20)
	if _, ok, _ := c.Lookup(ctx, d); ok {
		t.Fatal("half-written entry served after restart")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Fatalf("half-written entry not cleaned: %d files in tmp", len(ents))
	}
	// A stray meta file without data (a crash between the two writes of
	// Commit) is no entry either.
	p, _ := s.path(d)
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p+".meta", []byte(`{}`), 0o600)
	c = open(t, dir, 1<<20)
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("stray meta became an entry: %+v", st)
	}
	// Data whose meta is missing or broken (a crash before the meta was
	// durable) is no entry, and its bytes do not linger uncounted.
	for _, m := range []string{"", `{"origin":`, `{}`} {
		os.WriteFile(p, b, 0o600)
		os.Remove(p + ".meta")
		if m != "" {
			os.WriteFile(p+".meta", []byte(m), 0o600)
		}
		c = open(t, dir, 1<<20)
		if st := c.Stats(); st.Entries != 0 {
			t.Fatalf("meta %q: data became an entry: %+v", m, st)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("meta %q: data without a valid meta left on disk: %v", m, err)
		}
	}
}

// The last reader leaving a fill cancels the upstream fetch; the entry is
// not committed.
func TestAbandonedFill(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir(), 8<<20)
	b, d := content(t, 256<<10)
	u := &upstream{b: b, gate: make(chan struct{})}
	r, _, err := c.Fill(ctx, d, u.fetch)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(r, make([]byte, 1000))
	r.Close()
	if ok, err := c.Wait(ctx, d); ok || err != nil {
		t.Fatalf("abandoned fill: committed=%v err=%v", ok, err)
	}
	if st := c.Stats(); st.Entries != 0 || st.FillFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEvictionLRUAndPinned(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir(), 400<<10)
	var ds []Key
	put := func() Key {
		b, d := content(t, 100<<10)
		r, _, err := c.Fill(ctx, d, (&upstream{b: b}).fetch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(t, r); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		return d
	}
	a, b2, c3, _ := put(), put(), put(), put()
	// Use a (now most recent) and keep it open: pinned.
	ra, ok, _ := c.Lookup(ctx, a)
	if !ok {
		t.Fatal("a missing")
	}
	ra.Blob()
	put() // needs room: b2 is least recently used and not pinned
	if c.Has(b2) {
		t.Fatal("least recently used entry b survived")
	}
	if !c.Has(a) || !c.Has(c3) {
		t.Fatal("wrong entry evicted")
	}
	// Pin everything: a new entry does not fit, so it is streamed
	// uncached (put read it whole), and nothing pinned goes.
	var pins []*Reader
	for _, d := range c.List() {
		r, _, _ := c.Lookup(ctx, d.Key())
		pins = append(pins, r)
	}
	e := put()
	for _, p := range pins {
		if !c.Has(p.Info().Key()) {
			t.Fatalf("pinned entry %s evicted", p.Info().Digest)
		}
	}
	if err := c.Evict(ctx, a); !errors.Is(err, ErrInUse) {
		t.Fatalf("evict of a pinned entry: %v", err)
	}
	for _, p := range pins {
		p.Close()
	}
	ra.Close()
	if st := c.Stats(); st.Bytes > c.Max() {
		t.Fatalf("over the cap after release: %+v", st)
	}
	if c.Has(e) {
		t.Fatal("an entry was cached with every other entry pinned: over the cap")
	}
	if st := c.Stats(); st.Evictions != 1 || st.Uncached != 1 {
		t.Fatalf("evictions %d (want 1), uncached %d (want 1)", st.Evictions, st.Uncached)
	}
}

// An entry larger than the cache is streamed to its reader uncached: the
// client gets its bytes, the cache keeps none.
func TestTooLargeStreamedUncached(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir(), 10<<10)
	b, d := content(t, 20<<10)
	r, _, err := c.Fill(ctx, d, (&upstream{b: b}).fetch)
	if err != nil {
		t.Fatalf("fill of an entry larger than the cache: %v", err)
	}
	got, err := readAll(t, r)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("reader got %d of %d bytes, err %v", len(got), len(b), err)
	}
	if c.Has(d) {
		t.Fatal("too large entry cached")
	}
	if st := c.Stats(); st.Uncached != 1 || st.Bytes != 0 {
		t.Fatalf("stats after an uncached fill: %+v", st)
	}
}

func TestConfirmations(t *testing.T) {
	c := NewConfirmations(4, 4)
	now := time.Unix(1_000_000, 0)
	k := ConfirmKey{Credential: "c1", Identity: "v1", Repository: "r.test/a", Reference: "sha256:x"}
	c.Put(k, Confirmation{Origin: testOrigin, Digest: "sha256:x", At: now})
	if _, ok := c.Get(k, testOrigin, now.Add(time.Minute), 2*time.Minute); !ok {
		t.Fatal("fresh confirmation not found")
	}
	if _, ok := c.Get(k, testOrigin, now.Add(3*time.Minute), 2*time.Minute); ok {
		t.Fatal("confirmation used past its age")
	}
	if _, ok := c.Get(k, "https://evil.test", now, time.Hour); ok {
		t.Fatal("a confirmation of one origin was used for another")
	}
	other := k
	other.Credential = "c2"
	if _, ok := c.Get(other, testOrigin, now, time.Hour); ok {
		t.Fatal("another credential's confirmation matched")
	}
	for i := 0; i < 10; i++ {
		c.Put(ConfirmKey{Credential: "c", Reference: string(rune('a' + i))}, Confirmation{At: now.Add(time.Duration(i) * time.Second)})
	}
	if c.n > 4 {
		t.Fatalf("%d confirmations kept, max 4", c.n)
	}
}

// One credential cannot flood out the others' confirmations, and an
// update of a credential (a new identity) drops all of its old ones.
func TestConfirmationsPerCredential(t *testing.T) {
	c := NewConfirmations(100, 10)
	now := time.Unix(1_000_000, 0)
	victim := ConfirmKey{Credential: "victim", Identity: "v1", Repository: "r.test/a", Reference: "sha256:x"}
	c.Put(victim, Confirmation{Origin: testOrigin, At: now})
	for i := 0; i < 1000; i++ {
		c.Put(ConfirmKey{Credential: "flood", Identity: "v1", Reference: fmt.Sprint(i)}, Confirmation{Origin: testOrigin, At: now.Add(time.Duration(i) * time.Millisecond)})
	}
	if _, ok := c.Get(victim, testOrigin, now, time.Hour); !ok {
		t.Fatal("one credential's confirmations pushed out another's")
	}
	if n := len(c.creds["flood"].m); n > 10 {
		t.Fatalf("%d confirmations of one credential kept, max 10", n)
	}
	updated := victim
	updated.Identity = "v2"
	if _, ok := c.Get(updated, testOrigin, now, time.Hour); ok {
		t.Fatal("a confirmation survived its credential's update")
	}
	c.Put(ConfirmKey{Credential: "victim", Identity: "v2", Reference: "sha256:y"}, Confirmation{Origin: testOrigin, At: now})
	if _, ok := c.Get(victim, testOrigin, now, time.Hour); ok {
		t.Fatal("the old identity's confirmation is still there")
	}
}

// One digest from two upstreams is two entries: an upstream can only ever
// be served what it (or another request to the same upstream) filled.
func TestOriginsAreSeparate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir, 8<<20)
	b, k := content(t, 64<<10)
	if r, _, err := c.Fill(ctx, k, (&upstream{b: b}).fetch); err != nil {
		t.Fatal(err)
	} else if _, err := readAll(t, r); err != nil {
		t.Fatal(err)
	}
	other := Key{Origin: "https://evil.test", Digest: k.Digest}
	if c.Has(other) {
		t.Fatal("an entry of one origin is visible under another")
	}
	if _, ok, _ := c.Lookup(ctx, other); ok {
		t.Fatal("lookup under another origin found the entry")
	}
	c2 := open(t, dir, 8<<20)
	if !c2.Has(k) || c2.Has(other) {
		t.Fatal("origin lost on reopen")
	}
	if n, err := c2.EvictDigest(ctx, k.Digest); n != 1 || err != nil {
		t.Fatalf("EvictDigest: %d, %v", n, err)
	}
	if _, err := c2.EvictDigest(ctx, k.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EvictDigest of nothing: %v", err)
	}
}

// slow announces size and sends the first bytes of b, then holds the body
// until ctx ends (an upstream a tenant runs, trickling).
func slow(b []byte, size int64, first int) FetchFunc {
	return func(ctx context.Context) (Upstream, error) {
		body := io.MultiReader(bytes.NewReader(b[:first]), gated{make(chan struct{}), ctx})
		return Upstream{Body: io.NopCloser(body), Size: size}, nil
	}
}

// A fill that merely announces a Content-Length evicts nothing: entries
// are evicted in step with bytes written, and one too large for the
// cache is not admitted at all. Meanwhile other entries still commit.
func TestAnnouncedSizeEvictsNothing(t *testing.T) {
	for _, announced := range []int{1000, 250} {
		t.Run(fmt.Sprint(announced), func(t *testing.T) {
			c := open(t, t.TempDir(), 1000)
			// The victim's entry, least recently used, and three more:
			// 800 of 1000 bytes committed.
			var k Key
			for i := 0; i < 4; i++ {
				b, ki := content(t, 200)
				r, _, err := c.Fill(context.Background(), ki, (&upstream{b: b}).fetch)
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, r)
				if ok, _ := c.Wait(context.Background(), ki); !ok {
					t.Fatal("entry not committed")
				}
				if i == 0 {
					k = ki
				}
			}
			evil, ek := content(t, announced)
			ek.Origin = "https://evil.test"
			er, _, err := c.Fill(context.Background(), ek, slow(evil, int64(announced), 0))
			if err != nil {
				t.Fatal(err)
			}
			defer er.Close()
			if !c.Has(k) {
				t.Error("another origin's announced Content-Length evicted the victim's committed entry")
			}
			// While the slow fill is held open, new entries still stay
			// cached.
			b3, k3 := content(t, 100)
			r3, _, err := c.Fill(context.Background(), k3, (&upstream{b: b3}).fetch)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, r3)
			c.Wait(context.Background(), k3)
			if !c.Has(k3) {
				t.Error("a new 100-byte entry was evicted at commit while the other origin's fill is held open")
			}
			// 900 bytes committed, none written by the held fill: nothing
			// had to go.
			if st := c.Stats(); st.Evictions != 0 || !c.Has(k) {
				t.Errorf("evicted for bytes only announced: %+v", st)
			}
		})
	}
}

// Concurrent fills are admitted only while their reservations fit the
// cap: bytes on disk (committed and temp) never exceed it, whether the
// fills are each too large or only too many together.
func TestConcurrentFillsStayUnderCap(t *testing.T) {
	for _, tc := range []struct{ fills, size int }{{4, 900}, {6, 240}} {
		t.Run(fmt.Sprintf("%dx%d", tc.fills, tc.size), func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir, 1000)
			var readers []*Reader
			for i := 0; i < tc.fills; i++ {
				b, k := content(t, tc.size)
				r, _, err := c.Fill(context.Background(), k, slow(b, int64(tc.size), tc.size-1))
				if err != nil {
					t.Fatal(err)
				}
				readers = append(readers, r)
			}
			defer func() {
				for _, r := range readers {
					r.Close()
				}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for c.Stats().FilledBytes < int64(tc.fills*(tc.size-1)) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			var onDisk int64
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					onDisk += fi.Size()
				}
				return nil
			})
			st := c.Stats()
			if onDisk > c.Max() {
				t.Fatalf("%d bytes on disk with a cap of %d (%d fills running, stats bytes %d)", onDisk, c.Max(), st.Filling, st.Bytes)
			}
		})
	}
}

// Fill refuses a digest the rest of the hub refuses (v1.NewHash) before
// it asks the upstream for it.
func TestBadDigestNotFetched(t *testing.T) {
	c := open(t, t.TempDir(), 1000)
	traversal := "sha256:" + strings.Repeat("../", 30)
	for _, d := range []string{
		traversal[:7+64],
		"sha256:" + strings.Repeat("A", 64),
		"sha512:" + strings.Repeat("a", 128),
		"sha256:" + strings.Repeat("a", 63),
		"",
	} {
		var fetched int
		_, _, err := c.Fill(context.Background(), Key{Origin: testOrigin, Digest: d}, func(ctx context.Context) (Upstream, error) {
			fetched++
			return Upstream{Body: io.NopCloser(bytes.NewReader(nil)), Size: 0}, nil
		})
		if fetched > 0 || err == nil {
			t.Errorf("digest %q: fetched %d times, err %v", d, fetched, err)
		}
	}
}

// An entry of unknown size (no Content-Length) that outgrows what the
// cache admits is streamed to its readers uncached, every reader that
// followed it included: they all get every byte.
func TestUnknownSizeLargerThanCacheStreamed(t *testing.T) {
	c := open(t, t.TempDir(), 1000)
	b, k := content(t, 3000)
	r, _, err := c.Fill(context.Background(), k, func(ctx context.Context) (Upstream, error) {
		return Upstream{Body: io.NopCloser(bytes.NewReader(b)), Size: -1}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != nil || len(got) != len(b) {
		t.Fatalf("reader got %d of %d bytes, err %v", len(got), len(b), err)
	}

	// Followers: two requests joined before the fill spilled, reading
	// at once (a spilled fill moves at its slowest reader's pace).
	c = open(t, t.TempDir(), 4<<10)
	b, k = content(t, 64<<10)
	gate := make(chan struct{})
	var joined *Reader
	first, _, err := c.Fill(context.Background(), k, func(ctx context.Context) (Upstream, error) {
		var ok bool
		if joined, ok, _ = c.Lookup(context.Background(), k); !ok {
			t.Error("could not join the fill")
		}
		body := io.MultiReader(bytes.NewReader(b[:512]), gated{gate, ctx}, bytes.NewReader(b[512:]))
		return Upstream{Body: io.NopCloser(body), Size: -1}, nil
	})
	if err != nil || joined == nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range []*Reader{first, joined} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := readAll(t, r)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("follower got %d of %d bytes, err %v", len(got), len(b), err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if c.Has(k) || c.Stats().Uncached != 1 {
		t.Fatalf("cached an entry larger than admitted: %+v", c.Stats())
	}
}

// A spilled fill of bytes that do not match their digest ends every
// reader with ErrDigestMismatch, not an end of file.
func TestUncachedCorruptFails(t *testing.T) {
	c := open(t, t.TempDir(), 1000)
	b, k := content(t, 3000)
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1
	for _, size := range []int64{-1, 3000} {
		r, _, err := c.Fill(context.Background(), k, func(ctx context.Context) (Upstream, error) {
			return Upstream{Body: io.NopCloser(bytes.NewReader(bad)), Size: size}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("size %d: read %d bytes, err %v", size, len(got), err)
		}
		if size > 0 && len(got) >= len(b) {
			t.Fatalf("size %d: the whole corrupt body was handed out before the verdict", size)
		}
	}
}
