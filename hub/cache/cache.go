package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxBytes is the size cap when none is configured.
const DefaultMaxBytes = 20 << 30

// ErrDigestMismatch means an upstream's bytes did not hash to the digest
// they were fetched for. The entry is discarded; readers following the
// fill get this error instead of an end of file.
var ErrDigestMismatch = errors.New("cache: upstream content does not match its digest")

// ErrTooLarge means an entry is larger than the whole cache.
var ErrTooLarge = errors.New("cache: entry larger than the cache")

// fillBufSize is the copy buffer of one fill.
const fillBufSize = 256 << 10

// Cache is an LRU, size-capped set of entries over a Storage, with
// single-flight fills. Create it with Open.
type Cache struct {
	store Storage
	max   int64
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	entries  map[Key]*entry
	lru      *list.List // of *entry, front = most recently used
	fills    map[Key]*fill
	size     int64 // committed bytes
	reserved int64 // bytes announced by running fills

	hits, misses, evictions, failures, filled atomic.Int64
}

type entry struct {
	info Info
	refs int // open readers: never evicted while > 0
	elem *list.Element
	used time.Time
}

// Option configures a Cache.
type Option func(*Cache)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// WithClock replaces time.Now (last-use times).
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// Open loads the index of committed entries from s. maxBytes <= 0 means
// DefaultMaxBytes.
func Open(ctx context.Context, s Storage, maxBytes int64, opts ...Option) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	c := &Cache{store: s, max: maxBytes, log: slog.Default(), now: time.Now,
		entries: map[Key]*entry{}, lru: list.New(), fills: map[Key]*fill{}}
	for _, o := range opts {
		o(c)
	}
	var infos []Info
	if err := s.Walk(ctx, func(i Info) error { infos = append(infos, i); return nil }); err != nil {
		return nil, fmt.Errorf("cache: load index: %w", err)
	}
	// Oldest first, so the most recently modified end up at the front.
	sort.Slice(infos, func(a, b int) bool { return infos[a].Modified.Before(infos[b].Modified) })
	for _, i := range infos {
		e := &entry{info: i, used: i.Modified}
		e.elem = c.lru.PushFront(e)
		c.entries[i.Key()] = e
		c.size += i.Size
	}
	c.mu.Lock()
	c.evictLocked(ctx, 0)
	c.mu.Unlock()
	return c, nil
}

// Max is the size cap in bytes.
func (c *Cache) Max() int64 { return c.max }

// Stats are the cache's counters and sizes.
type Stats struct {
	Entries   int   `json:"entries"`
	Bytes     int64 `json:"bytes"`
	MaxBytes  int64 `json:"maxBytes"`
	Filling   int   `json:"filling"`
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	// FillFailures counts fills that were discarded: upstream errors,
	// digest mismatches, abandoned fills.
	FillFailures int64 `json:"fillFailures"`
	// FilledBytes counts bytes read from upstreams into the cache.
	FilledBytes int64 `json:"filledBytes"`
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Entries: len(c.entries), Bytes: c.size, MaxBytes: c.max, Filling: len(c.fills),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), FillFailures: c.failures.Load(),
		FilledBytes: c.filled.Load()}
}

// EntryInfo is one entry of List.
type EntryInfo struct {
	Info
	LastUsed time.Time `json:"lastUsed"`
	InUse    int       `json:"inUse"`
}

// List returns the committed entries, most recently used first.
func (c *Cache) List() []EntryInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]EntryInfo, 0, len(c.entries))
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry)
		out = append(out, EntryInfo{Info: e.info, LastUsed: e.used, InUse: e.refs})
	}
	return out
}

// Has reports whether k is committed or being filled.
func (c *Cache) Has(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[k]
	_, filling := c.fills[k]
	return ok || filling
}

// ErrInUse means an entry is being read or written and was not evicted.
var ErrInUse = errors.New("cache: entry in use")

// Evict removes one entry now. An entry being read or written is not
// evicted (ErrInUse); an unknown one is ErrNotFound.
func (c *Cache) Evict(ctx context.Context, k Key) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.fills[k]; ok {
		return ErrInUse
	}
	e, ok := c.entries[k]
	if !ok {
		return ErrNotFound
	}
	if e.refs > 0 {
		return ErrInUse
	}
	return c.removeLocked(ctx, e)
}

// EvictDigest evicts every entry of digest, whatever its origin, and
// returns how many went. An entry in use makes it fail with ErrInUse
// (entries of other origins may have gone).
func (c *Cache) EvictDigest(ctx context.Context, digest string) (int, error) {
	c.mu.Lock()
	var keys []Key
	for k := range c.entries {
		if k.Digest == digest {
			keys = append(keys, k)
		}
	}
	for k := range c.fills {
		if k.Digest == digest {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return 0, ErrNotFound
	}
	n := 0
	for _, k := range keys {
		if err := c.Evict(ctx, k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (c *Cache) removeLocked(ctx context.Context, e *entry) error {
	if err := c.store.Delete(ctx, e.info.Key()); err != nil {
		return err
	}
	c.lru.Remove(e.elem)
	delete(c.entries, e.info.Key())
	c.size -= e.info.Size
	c.evictions.Add(1)
	return nil
}

// evictLocked removes least recently used entries that nobody reads until
// the committed and reserved bytes plus extra fit the cap.
func (c *Cache) evictLocked(ctx context.Context, extra int64) {
	for el := c.lru.Back(); el != nil && c.size+c.reserved+extra > c.max; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.refs == 0 {
			if err := c.removeLocked(ctx, e); err != nil {
				c.log.Warn("cache eviction failed", "digest", e.info.Digest, "err", err)
			} else {
				c.log.Debug("cache evicted", "digest", e.info.Digest, "size", e.info.Size)
			}
		}
		el = prev
	}
}

// Lookup returns a reader of a committed entry (a hit, pinned until the
// reader is closed), or of a fill in progress. ok is false when the
// digest is neither. It does not count a hit or miss: the caller decides
// whether it serves the entry.
func (c *Cache) Lookup(ctx context.Context, k Key) (r *Reader, ok bool, err error) {
	c.mu.Lock()
	if e, found := c.entries[k]; found {
		e.refs++
		c.mu.Unlock()
		b, err := c.store.Open(ctx, k)
		if err != nil {
			c.release(e)
			if errors.Is(err, ErrNotFound) {
				// Gone underneath (an operator deleted files): forget it.
				c.mu.Lock()
				if e.refs == 0 && c.entries[k] == e {
					c.lru.Remove(e.elem)
					delete(c.entries, k)
					c.size -= e.info.Size
				}
				c.mu.Unlock()
				return nil, false, nil
			}
			return nil, false, err
		}
		return &Reader{c: c, ctx: ctx, e: e, blob: b, info: b.Info()}, true, nil
	}
	if f, found := c.fills[k]; found {
		r, err := c.joinLocked(ctx, f)
		c.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		return r, true, nil
	}
	c.mu.Unlock()
	return nil, false, nil
}

// CountHit and CountMiss record whether a request was served from the
// cache (for Stats).
func (c *Cache) CountHit()  { c.hits.Add(1) }
func (c *Cache) CountMiss() { c.misses.Add(1) }

// touch marks an entry used now.
func (c *Cache) touch(e *entry) {
	c.mu.Lock()
	e.used = c.now()
	if c.entries[e.info.Key()] == e {
		c.lru.MoveToFront(e.elem)
	}
	c.mu.Unlock()
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 && c.size+c.reserved > c.max {
		c.evictLocked(context.Background(), 0)
	}
	c.mu.Unlock()
}

// Upstream is what a fill reads: the body of an upstream answer, its size
// (-1 when unknown) and media type.
type Upstream struct {
	Body      io.ReadCloser
	Size      int64
	MediaType string
}

// FetchFunc opens the upstream content of a fill. Its context is the
// fill's own: it ends when every reader has gone or the fill is done.
type FetchFunc func(ctx context.Context) (Upstream, error)

// Fill returns a reader of digest, starting the one upstream fetch for it
// unless the entry is committed or already being filled (then it joins).
// started reports whether this call started the fetch; when it did and
// the fetch failed before any byte, Fill returns the fetch's error.
//
// The caller must have established that its client may read digest
// before calling Fill or Lookup: the cache does not know tenants.
func (c *Cache) Fill(ctx context.Context, k Key, fetch FetchFunc) (r *Reader, started bool, err error) {
	if r, ok, err := c.Lookup(ctx, k); err != nil || ok {
		return r, false, err
	}
	h, err := newHash(k.Digest)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	if _, ok := c.entries[k]; ok {
		c.mu.Unlock()
		r, _, err := c.Lookup(ctx, k)
		return r, false, err
	}
	if f, ok := c.fills[k]; ok {
		r, err := c.joinLocked(ctx, f)
		c.mu.Unlock()
		return r, false, err
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &fill{key: k, size: -1, changed: make(chan struct{}), cancel: cancel, hash: h}
	c.fills[k] = f
	f.refs = 1 // the caller's, until it has its reader
	c.mu.Unlock()

	up, err := fetch(fctx)
	if err == nil && up.Size > c.max {
		up.Body.Close()
		err = ErrTooLarge
	}
	var w Writer
	var ra ReaderAtCloser
	if err == nil {
		w, err = c.store.Create(fctx, k)
		if err == nil {
			// One reader for every follower, opened now: the entry's
			// temp name is gone once it is committed.
			if ra, err = w.NewReader(); err != nil {
				w.Abort()
				err = fmt.Errorf("cache: follow fill: %w", err)
			}
		}
		if err != nil {
			up.Body.Close()
		}
	}
	if err != nil {
		c.finish(f, nil, "", err)
		return nil, true, err
	}
	c.mu.Lock()
	f.w, f.ra, f.size, f.mediaType = w, ra, up.Size, up.MediaType
	if up.Size > 0 {
		c.reserved += up.Size
		c.evictLocked(fctx, 0)
	}
	r, err = c.joinLocked(ctx, f)
	c.releaseFillLocked(f) // the caller's placeholder, now held by r
	c.mu.Unlock()
	go c.run(fctx, f, up)
	if err != nil {
		return nil, true, err
	}
	return r, true, nil
}

// Wait blocks until k is no longer being filled, and reports whether it
// is then committed.
func (c *Cache) Wait(ctx context.Context, k Key) (bool, error) {
	for {
		c.mu.Lock()
		f, filling := c.fills[k]
		_, ok := c.entries[k]
		var ch chan struct{}
		if filling {
			ch = f.changed
		}
		c.mu.Unlock()
		if !filling {
			return ok, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// fill is an entry being written.
type fill struct {
	key       Key
	w         Writer
	ra        ReaderAtCloser // shared by followers; closed by the last
	size      int64          // announced by the upstream; -1 unknown
	mediaType string
	hash      hash.Hash
	cancel    context.CancelFunc

	// Guarded by Cache.mu.
	written int64
	done    bool
	err     error
	refs    int
	changed chan struct{} // closed and replaced on every change
}

func (c *Cache) joinLocked(ctx context.Context, f *fill) (*Reader, error) {
	f.refs++
	// Before the fetch answered the size is unknown; Ready waits for it.
	return &Reader{c: c, ctx: ctx, f: f, info: Info{Origin: f.key.Origin, Digest: f.key.Digest, Size: f.size, MediaType: f.mediaType}}, nil
}

// releaseFillLocked drops one reference to f and closes its shared reader
// when nobody needs it any more.
func (c *Cache) releaseFillLocked(f *fill) {
	f.refs--
	if f.refs == 0 && f.done && f.ra != nil {
		f.ra.Close()
		f.ra = nil
	}
}

func (c *Cache) broadcastLocked(f *fill) {
	close(f.changed)
	f.changed = make(chan struct{})
}

// run copies the upstream body into the entry, verifies it, and commits
// or discards it.
func (c *Cache) run(ctx context.Context, f *fill, up Upstream) {
	defer up.Body.Close()
	buf := make([]byte, fillBufSize)
	var err error
	for {
		n, rerr := up.Body.Read(buf)
		if n > 0 {
			if _, werr := f.w.Write(buf[:n]); werr != nil {
				err = fmt.Errorf("cache: write entry: %w", werr)
				break
			}
			f.hash.Write(buf[:n])
			c.filled.Add(int64(n))
			c.mu.Lock()
			f.written += int64(n)
			over := f.size >= 0 && f.written > f.size
			c.broadcastLocked(f)
			c.mu.Unlock()
			if over {
				err = ErrDigestMismatch
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("cache: read upstream: %w", rerr)
			break
		}
		if f.written > c.max {
			err = ErrTooLarge
			break
		}
	}
	if err == nil {
		if got := hashDigest(f.key.Digest, f.hash); got != f.key.Digest || (f.size >= 0 && f.written != f.size) {
			c.log.Warn("cache: upstream content does not match its digest; not cached", "origin", f.key.Origin, "digest", f.key.Digest, "got", got, "bytes", f.written)
			err = ErrDigestMismatch
		}
	}
	if err == nil {
		err = f.w.Commit(f.mediaType)
	} else {
		if aerr := f.w.Abort(); aerr != nil {
			c.log.Warn("cache: discard entry", "digest", f.key.Digest, "err", aerr)
		}
	}
	c.finish(f, f.w, f.mediaType, err)
}

// finish ends a fill: commits the entry to the index (err == nil) or
// counts a failure, and wakes its readers.
func (c *Cache) finish(f *fill, w Writer, mediaType string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.fills, f.key)
	if f.size > 0 && w != nil {
		c.reserved -= f.size
	}
	f.done, f.err = true, err
	if err == nil {
		e := &entry{info: Info{Origin: f.key.Origin, Digest: f.key.Digest, Size: f.written, MediaType: mediaType, Modified: c.now()}, used: c.now()}
		e.elem = c.lru.PushFront(e)
		c.entries[f.key] = e
		c.size += f.written
		c.evictLocked(context.Background(), 0)
	} else {
		c.failures.Add(1)
	}
	if f.refs == 0 && f.ra != nil {
		f.ra.Close()
		f.ra = nil
	}
	c.broadcastLocked(f)
	f.cancel()
}

// Reader reads one entry: a committed one (Hit) or a fill in progress.
type Reader struct {
	c    *Cache
	ctx  context.Context
	info Info

	// Committed.
	e    *entry
	blob Blob

	// Following a fill.
	f      *fill
	off    int64
	closed bool
}

// Hit reports whether the entry was committed when the reader was opened.
func (r *Reader) Hit() bool { return r.e != nil }

// Info describes the entry; for a fill Size is -1 until the upstream
// announced it.
func (r *Reader) Info() Info { return r.info }

// Blob is the committed entry (nil for a fill): a Seeker for Range
// requests, and for Local an *os.File (OSFile) for sendfile.
func (r *Reader) Blob() Blob {
	if r.e != nil {
		r.c.touch(r.e)
	}
	return r.blob
}

// Ready waits until a followed fill has its upstream answer (so Info
// has the size and media type) and returns the fill's error if it failed
// before that. It returns at once for a committed entry.
func (r *Reader) Ready() error {
	if r.blob != nil {
		return nil
	}
	for {
		r.c.mu.Lock()
		f := r.f
		if f.w == nil && f.done {
			r.c.mu.Unlock()
			return f.err
		}
		if f.w != nil {
			r.info.Size, r.info.MediaType = f.size, f.mediaType
			r.c.mu.Unlock()
			return nil
		}
		ch := f.changed
		r.c.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

// Read reads a committed entry, or follows a fill: it waits for bytes
// while the fill runs, and ends with io.EOF only once the entry was
// verified and committed. A fill that fails ends with its error
// (ErrDigestMismatch for bytes that did not match).
func (r *Reader) Read(p []byte) (int, error) {
	if r.blob != nil {
		return r.blob.Read(p)
	}
	for {
		r.c.mu.Lock()
		f := r.f
		ra := f.ra
		written, done, ferr, ch := f.written, f.done, f.err, f.changed
		if !done && f.size > 0 && written >= f.size {
			// The last byte waits for the verdict: a client must not
			// receive a complete response of bytes that turn out not to
			// match their digest.
			written = f.size - 1
		}
		r.c.mu.Unlock()
		if done && ferr != nil {
			// Failed: not even the bytes already written (they may be
			// the ones that did not match).
			return 0, ferr
		}
		if r.off < written && ra != nil {
			n := int64(len(p))
			if n > written-r.off {
				n = written - r.off
			}
			m, err := ra.ReadAt(p[:n], r.off)
			r.off += int64(m)
			if m > 0 {
				return m, nil
			}
			if err != nil && err != io.EOF {
				return 0, fmt.Errorf("cache: read fill: %w", err)
			}
		}
		if done {
			if r.off >= written {
				return 0, io.EOF
			}
			continue
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close releases the reader. The last reader of a fill that is still
// running cancels it: nobody wants its bytes.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.blob != nil {
		err := r.blob.Close()
		r.c.touch(r.e)
		r.c.release(r.e)
		return err
	}
	r.c.mu.Lock()
	r.c.releaseFillLocked(r.f)
	abandon := r.f.refs == 0 && !r.f.done
	r.c.mu.Unlock()
	if abandon {
		r.f.cancel()
	}
	return nil
}

func newHash(digest string) (hash.Hash, error) {
	alg, hexPart, ok := strings.Cut(digest, ":")
	if !ok {
		return nil, fmt.Errorf("cache: bad digest %q", digest)
	}
	switch alg {
	case "sha256":
		if len(hexPart) == 64 {
			return sha256.New(), nil
		}
	case "sha512":
		if len(hexPart) == 128 {
			return sha512.New(), nil
		}
	}
	return nil, fmt.Errorf("cache: unsupported digest %q", digest)
}

func hashDigest(digest string, h hash.Hash) string {
	alg, _, _ := strings.Cut(digest, ":")
	return alg + ":" + hex.EncodeToString(h.Sum(nil))
}
