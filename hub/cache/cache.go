package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
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

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultMaxBytes is the size cap when none is configured.
const DefaultMaxBytes = 20 << 30

// ErrDigestMismatch means an upstream's bytes did not hash to the digest
// they were fetched for. The entry is discarded; readers following the
// fill get this error instead of an end of file.
var ErrDigestMismatch = errors.New("cache: upstream content does not match its digest")

// fillBufSize is the copy buffer of one fill.
const fillBufSize = 256 << 10

// Admission bounds. A fill is cached only while it fits: its own size at
// most max/maxEntryDiv, all running fills' reservations together at most
// the cap less the pinned (being read) entries, and one origin's at most
// max/maxOriginDiv. Whatever does not fit is streamed to its readers
// uncached, so an upstream (a tenant may run one) that announces or sends
// a huge body cannot flush other origins' entries or fill the disk
// beyond the cap, and the client still gets its bytes.
const (
	maxEntryDiv  = 4
	maxOriginDiv = 2
)

// Cache is an LRU, size-capped set of entries over a Storage, with
// single-flight fills. Create it with Open.
type Cache struct {
	store  Storage
	shared bool // other replicas add entries to store (SharedStorage)
	max    int64
	log    *slog.Logger
	now    func() time.Time
	// walkBudget bounds the index walk of a shared store at start.
	walkBudget time.Duration

	mu       sync.Mutex
	entries  map[Key]*entry
	lru      *list.List // of *entry, front = most recently used
	fills    map[Key]*fill
	size     int64            // committed bytes
	pinned   int64            // committed bytes of entries being read (not evictable)
	reserved int64            // bytes admitted for running fills (announced, or received when unknown)
	inflight int64            // bytes written to running fills' files
	byOrigin map[string]int64 // reserved, per origin

	hits, misses, evictions, failures, filled, uncached, storeErrors atomic.Int64
}

// SharedStorage is a Storage that several hub replicas write (an object
// store): an entry missing from this replica's index may still be there,
// put by another replica, so Lookup asks the storage.
type SharedStorage interface {
	Shared() bool
}

// availability is a Storage that knows whether it answers (S3).
type availability interface {
	Available() bool
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

// DefaultSharedWalkBudget bounds how long Open indexes a shared store
// (SharedStorage) at start.
const DefaultSharedWalkBudget = 30 * time.Second

var errWalkBudget = errors.New("cache: walk budget spent")

// WithSharedWalkBudget sets how long Open indexes a shared store (see
// DefaultSharedWalkBudget).
func WithSharedWalkBudget(d time.Duration) Option { return func(c *Cache) { c.walkBudget = d } }

// WithClock replaces time.Now (last-use times).
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// Open loads the index of committed entries from s. maxBytes <= 0 means
// DefaultMaxBytes.
func Open(ctx context.Context, s Storage, maxBytes int64, opts ...Option) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	c := &Cache{store: s, max: maxBytes, log: slog.Default(), now: time.Now, walkBudget: DefaultSharedWalkBudget,
		entries: map[Key]*entry{}, lru: list.New(), fills: map[Key]*fill{}, byOrigin: map[string]int64{}}
	if ss, ok := s.(SharedStorage); ok {
		c.shared = ss.Shared()
	}
	for _, o := range opts {
		o(c)
	}
	var infos []Info
	began := time.Now()
	err := s.Walk(ctx, func(i Info) error {
		if c.shared && time.Since(began) > c.walkBudget {
			return errWalkBudget
		}
		infos = append(infos, i)
		return nil
	})
	if errors.Is(err, errWalkBudget) {
		// A bucket of many entries (every replica's, and a tenant can add
		// many tiny ones) must not keep the hub from starting (a startup
		// probe kills it): the index at start is only a head start, what
		// is not indexed is found on demand (lookupShared) and otherwise
		// left to the bucket's lifecycle rule.
		c.log.Info("cache: stopped indexing the shared store at start; the rest is found when pulled",
			"indexed", len(infos), "after", time.Since(began).Round(time.Millisecond))
		err = nil
	}
	if err != nil {
		if !c.shared || !errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("cache: load index: %w", err)
		}
		// A shared store that is down at start: Lookup finds its entries
		// once it answers; until then pulls go to the upstream.
		c.log.Warn("cache: object store unavailable at start; starting with an empty index", "err", err)
		c.storeErrors.Add(1)
		infos = nil
	}
	// Oldest first, so the most recently modified end up at the front.
	sort.Slice(infos, func(a, b int) bool { return infos[a].Modified.Before(infos[b].Modified) })
	if c.shared {
		// The bucket holds what every replica cached: index the newest
		// entries that fit this replica's cap and leave the rest to the
		// others (and the bucket's lifecycle rule) instead of deleting it.
		var n int64
		keep := len(infos)
		for keep > 0 && n+infos[keep-1].Size <= maxBytes {
			keep--
			n += infos[keep].Size
		}
		infos = infos[keep:]
	}
	for _, i := range infos {
		e := &entry{info: i, used: i.Modified}
		e.elem = c.lru.PushFront(e)
		c.entries[i.Key()] = e
		c.size += i.Size
	}
	c.mu.Lock()
	c.evictLocked(ctx)
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
	// FilledBytes counts bytes read from upstreams by fills, cached or
	// streamed uncached.
	FilledBytes int64 `json:"filledBytes"`
	// Uncached counts fills that were streamed to their readers without
	// being cached: they did not fit (see the admission bounds), or the
	// storage failed to store them.
	Uncached int64 `json:"uncached"`
	// StoreErrors counts storage calls that failed (an object store that
	// is unreachable): each such request went to the upstream uncached.
	StoreErrors int64 `json:"storeErrors"`
	// StoreAvailable is false while the storage does not answer.
	StoreAvailable bool `json:"storeAvailable"`
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	avail := true
	if a, ok := c.store.(availability); ok {
		avail = a.Available()
	}
	return Stats{Entries: len(c.entries), Bytes: c.size, MaxBytes: c.max, Filling: len(c.fills),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), FillFailures: c.failures.Load(),
		FilledBytes: c.filled.Load(), Uncached: c.uncached.Load(), StoreErrors: c.storeErrors.Load(), StoreAvailable: avail}
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
// the committed bytes and those written by running fills fit the cap.
// Fills evict in step with the bytes they write, never for bytes merely
// announced.
func (c *Cache) evictLocked(ctx context.Context) {
	for el := c.lru.Back(); el != nil && c.size+c.inflight > c.max; {
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
	if !Verifiable(k.Digest) {
		// Never filled (Fill verifies only these), so nothing to look for,
		// least of all in a shared store.
		return nil, false, nil
	}
	c.mu.Lock()
	if e, found := c.entries[k]; found {
		c.pinLocked(e)
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
			c.storeErrors.Add(1)
			return nil, false, err
		}
		return &Reader{c: c, ctx: ctx, e: e, blob: b, info: b.Info()}, true, nil
	}
	if f, found := c.fills[k]; found {
		r := c.joinLocked(ctx, f)
		c.mu.Unlock()
		return r, true, nil
	}
	c.mu.Unlock()
	if c.shared {
		return c.lookupShared(ctx, k)
	}
	return nil, false, nil
}

// lookupShared opens an entry that another replica put in the shared
// storage and adds it to this replica's index (its LRU now evicts it
// too). Whoever serves it must still confirm it for its client.
func (c *Cache) lookupShared(ctx context.Context, k Key) (*Reader, bool, error) {
	b, err := c.store.Open(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		c.storeErrors.Add(1)
		return nil, false, err
	}
	info := b.Info()
	if info.Size > c.max/maxEntryDiv {
		// Larger than this replica would cache itself (another replica's
		// cap is larger, or a stray object): indexing it would evict, that
		// is delete from the shared bucket, everything else this replica
		// indexes, and then the entry itself. The request fills (uncached)
		// instead.
		b.Close()
		return nil, false, nil
	}
	c.mu.Lock()
	e, found := c.entries[k]
	if !found {
		e = &entry{info: info, used: c.now()}
		e.elem = c.lru.PushFront(e)
		c.entries[k] = e
		c.size += info.Size
	}
	c.pinLocked(e)
	c.evictLocked(ctx)
	c.mu.Unlock()
	return &Reader{c: c, ctx: ctx, e: e, blob: b, info: info}, true, nil
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

func (c *Cache) pinLocked(e *entry) {
	e.refs++
	if e.refs == 1 {
		c.pinned += e.info.Size
	}
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 {
		c.pinned -= e.info.Size
		c.evictLocked(context.Background())
	}
	c.mu.Unlock()
}

// admitLocked reports whether a fill of origin that holds cur bytes may
// reserve n more (see the admission bounds).
func (c *Cache) admitLocked(origin string, cur, n int64) bool {
	return cur+n <= c.max/maxEntryDiv && c.reserved+n <= c.max-c.pinned && c.byOrigin[origin]+n <= c.max/maxOriginDiv
}

func (c *Cache) reserveLocked(f *fill, n int64) {
	f.reserved += n
	c.reserved += n
	c.byOrigin[f.key.Origin] += n
}

func (c *Cache) unreserveLocked(f *fill) {
	c.reserved -= f.reserved
	if c.byOrigin[f.key.Origin] -= f.reserved; c.byOrigin[f.key.Origin] <= 0 {
		delete(c.byOrigin, f.key.Origin)
	}
	f.reserved = 0
}

// uncacheLocked turns f into a pass-through: it stays out of the index
// (new requests start their own fetch), its readers get the rest of the
// bytes through its window, and it is never committed.
func (c *Cache) uncacheLocked(f *fill) {
	if f.spill {
		return
	}
	f.spill = true
	c.unreserveLocked(f)
	if c.fills[f.key] == f {
		delete(c.fills, f.key)
	}
	c.uncached.Add(1)
}

// Upstream is what a fill reads: the body of an upstream answer, its size
// (-1 when unknown) and media type.
type Upstream struct {
	Body      io.ReadCloser
	Size      int64
	MediaType string
	// Committed, when set, is called once the fill's bytes were verified
	// and committed, before its readers see their end: what a fill's
	// fetch proved (a confirmation) is recorded only then.
	Committed func()
}

// FetchFunc opens the upstream content of a fill. Its context is the
// fill's own: it ends when every reader has gone or the fill is done.
type FetchFunc func(ctx context.Context) (Upstream, error)

// Fill returns a reader of digest, starting the one upstream fetch for it
// unless the entry is committed or already being filled (then it joins).
// started reports whether this call started the fetch; when it did and
// the fetch failed before any byte, Fill returns the fetch's error. A
// digest that is not a valid sha256 digest is refused before any fetch.
//
// A fill that does not fit the cache (see the admission bounds) is
// streamed to its readers uncached: Fill still returns a reader of the
// upstream's (verified) bytes, and Stats counts it as Uncached.
//
// The caller must have established that its client may read digest
// before calling Fill or Lookup: the cache does not know tenants.
func (c *Cache) Fill(ctx context.Context, k Key, fetch FetchFunc) (r *Reader, started bool, err error) {
	h, err := newHash(k.Digest)
	if err != nil {
		return nil, false, err
	}
	if r, ok, err := c.Lookup(ctx, k); err != nil || ok {
		return r, false, err
	}
	c.mu.Lock()
	if _, ok := c.entries[k]; ok {
		c.mu.Unlock()
		r, _, err := c.Lookup(ctx, k)
		return r, false, err
	}
	if f, ok := c.fills[k]; ok {
		r := c.joinLocked(ctx, f)
		c.mu.Unlock()
		return r, false, nil
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &fill{key: k, size: -1, changed: make(chan struct{}), cancel: cancel, hash: h, readers: map[*Reader]struct{}{}}
	c.fills[k] = f
	f.refs = 1 // the caller's, until it has its reader
	c.mu.Unlock()

	up, err := fetch(fctx)
	if err != nil {
		c.finish(f, err)
		return nil, true, err
	}
	c.mu.Lock()
	f.size, f.mediaType = up.Size, up.MediaType
	// Unknown sizes are admitted, and reserve, as their bytes arrive.
	admit := up.Size < 0 || c.admitLocked(k.Origin, 0, up.Size)
	if admit && up.Size > 0 {
		c.reserveLocked(f, up.Size)
	}
	c.mu.Unlock()
	var w Writer
	var ra ReaderAtCloser
	if admit {
		if w, err = c.store.Create(fctx, k); err == nil {
			// One reader for every follower, opened now: the entry's
			// temp name is gone once it is committed.
			if ra, err = w.NewReader(); err != nil {
				w.Abort()
				w = nil
			}
		}
		if err != nil {
			c.log.Warn("cache: cannot create entry; streaming uncached", "digest", k.Digest, "err", err)
			admit = false
		}
	}
	c.mu.Lock()
	if !admit {
		c.uncacheLocked(f)
	}
	f.w, f.ra, f.ready = w, ra, true
	r = c.joinLocked(ctx, f)
	c.releaseFillLocked(f) // the caller's placeholder, now held by r
	c.broadcastLocked(f)
	c.mu.Unlock()
	go c.run(fctx, f, up)
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

// fill is an entry being written, or streamed uncached (spill).
//
// A fill writes the upstream's bytes to its entry's file, which its
// readers follow. One that stops fitting the cache (spill) writes no
// more: its readers read the file up to fileEnd and then the rest through
// win, a window of the last chunk read, which the fill replaces only once
// every reader has read it. A spilled fill is never committed.
type fill struct {
	key       Key
	w         Writer         // nil when streamed uncached from the start
	ra        ReaderAtCloser // shared by followers; closed by the last
	size      int64          // announced by the upstream; -1 unknown
	mediaType string
	hash      hash.Hash
	cancel    context.CancelFunc

	// Guarded by Cache.mu.
	ready    bool  // the upstream answered: size and mediaType are known
	written  int64 // bytes read from the upstream
	fileEnd  int64 // bytes in the entry's file
	reserved int64 // bytes this fill holds in Cache.reserved
	spill    bool
	win      []byte // bytes [winOff, winOff+len(win)) when spilled
	winOff   int64
	readers  map[*Reader]struct{}
	done     bool
	err      error
	refs     int
	changed  chan struct{} // closed and replaced on every change
}

func (c *Cache) joinLocked(ctx context.Context, f *fill) *Reader {
	f.refs++
	// Before the fetch answered the size is unknown; Ready waits for it.
	r := &Reader{c: c, ctx: ctx, f: f, info: Info{Origin: f.key.Origin, Digest: f.key.Digest, Size: f.size, MediaType: f.mediaType}}
	f.readers[r] = struct{}{}
	return r
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

// growLocked accounts n more bytes that a cached fill is about to write:
// an unknown-size fill reserves them now (or spills when they do not
// fit), and entries are evicted in step with what is on disk.
func (c *Cache) growLocked(f *fill, n int64) {
	if f.size < 0 {
		if !c.admitLocked(f.key.Origin, f.reserved, n) {
			c.uncacheLocked(f)
			return
		}
		c.reserveLocked(f, n)
	}
	c.inflight += n
	c.evictLocked(context.Background())
}

// waitReaders blocks a spilled fill until every reader has read its
// window.
func (c *Cache) waitReaders(ctx context.Context, f *fill) error {
	for {
		c.mu.Lock()
		behind := false
		for r := range f.readers {
			if r.off < f.written {
				behind = true
				break
			}
		}
		ch := f.changed
		c.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run copies the upstream body into the entry (or its window), verifies
// it, and commits or discards it.
func (c *Cache) run(ctx context.Context, f *fill, up Upstream) {
	defer up.Body.Close()
	// Two buffers: a spilled fill's window stays intact while the next
	// chunk is read into the other.
	bufs := [2][]byte{make([]byte, fillBufSize), nil}
	cur := 0
	var err error
	for {
		buf := bufs[cur]
		n, rerr := up.Body.Read(buf)
		if n > 0 {
			f.hash.Write(buf[:n])
			c.filled.Add(int64(n))
			c.mu.Lock()
			if !f.spill {
				c.growLocked(f, int64(n))
			}
			spill := f.spill
			c.mu.Unlock()
			if !spill {
				if _, werr := f.w.Write(buf[:n]); werr != nil {
					// A full (or failing) staging disk, which a tenant's
					// large blobs can cause: the readers still get the
					// bytes, uncached, through the window from this chunk
					// on; the file's first fileEnd bytes are intact.
					c.log.Warn("cache: cannot write entry; streaming uncached", "origin", f.key.Origin, "digest", f.key.Digest, "err", werr)
					c.mu.Lock()
					c.inflight -= int64(n) // grown for bytes that did not land
					c.uncacheLocked(f)
					c.mu.Unlock()
					spill = true
				}
			}
			c.mu.Lock()
			if spill {
				f.win, f.winOff = buf[:n], f.written
				if bufs[1-cur] == nil {
					bufs[1-cur] = make([]byte, fillBufSize)
				}
				cur = 1 - cur
			}
			f.written += int64(n)
			if !spill {
				f.fileEnd = f.written
			}
			over := f.size >= 0 && f.written > f.size
			last := f.size >= 0 && f.written >= f.size
			c.broadcastLocked(f)
			c.mu.Unlock()
			if over {
				err = ErrDigestMismatch
				break
			}
			// The last chunk of a known size is not waited for: its last
			// byte waits for the verdict (Reader.Read).
			if spill && !last {
				if err = c.waitReaders(ctx, f); err != nil {
					break
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("cache: read upstream: %w", rerr)
			break
		}
	}
	if err == nil {
		if got := hashDigest(f.key.Digest, f.hash); got != f.key.Digest || (f.size >= 0 && f.written != f.size) {
			c.log.Warn("cache: upstream content does not match its digest; not cached", "origin", f.key.Origin, "digest", f.key.Digest, "got", got, "bytes", f.written)
			err = ErrDigestMismatch
		}
	}
	c.mu.Lock()
	commit := err == nil && !f.spill
	c.mu.Unlock()
	if commit {
		if cerr := f.w.Commit(f.mediaType); cerr != nil {
			// The bytes are verified; only storing them failed (an object
			// store gone away): the readers still get them, uncached.
			c.log.Warn("cache: cannot store entry; served uncached", "origin", f.key.Origin, "digest", f.key.Digest, "err", cerr)
			c.storeErrors.Add(1)
			c.mu.Lock()
			c.uncacheLocked(f)
			c.mu.Unlock()
			commit = false
		}
	} else if f.w != nil {
		if aerr := f.w.Abort(); aerr != nil {
			c.log.Warn("cache: discard entry", "digest", f.key.Digest, "err", aerr)
		}
	}
	if err == nil && commit && up.Committed != nil {
		// Before the readers see their end: a request that follows this
		// one finds what the commit proved.
		up.Committed()
	}
	c.finish(f, err)
}

// finish ends a fill: commits the entry to the index (err == nil and not
// spilled) or counts a failure, and wakes its readers.
func (c *Cache) finish(f *fill, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fills[f.key] == f {
		delete(c.fills, f.key)
	}
	c.unreserveLocked(f)
	c.inflight -= f.fileEnd
	f.done, f.err = true, err
	switch {
	case err == nil && !f.spill && c.entries[f.key] != nil:
		// Found in the shared storage meanwhile (another replica's).
	case err == nil && !f.spill:
		e := &entry{info: Info{Origin: f.key.Origin, Digest: f.key.Digest, Size: f.written, MediaType: f.mediaType, Modified: c.now()}, used: c.now()}
		e.elem = c.lru.PushFront(e)
		c.entries[f.key] = e
		c.size += f.written
		c.evictLocked(context.Background())
	case err != nil:
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
	off    int64 // guarded by Cache.mu
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
		if f.ready {
			r.info.Size, r.info.MediaType = f.size, f.mediaType
			r.c.mu.Unlock()
			return nil
		}
		if f.done {
			r.c.mu.Unlock()
			return f.err
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

// errBehind is a reader that fell behind a spilled fill's window; the
// fill waits for its readers, so it means a bug.
var errBehind = errors.New("cache: reader fell behind an uncached fill")

// Read reads a committed entry, or follows a fill: it waits for bytes
// while the fill runs, and ends with io.EOF only once the bytes were
// verified (and, unless streamed uncached, committed). A fill that fails
// ends with its error (ErrDigestMismatch for bytes that did not match).
func (r *Reader) Read(p []byte) (int, error) {
	if r.blob != nil {
		return r.blob.Read(p)
	}
	c := r.c
	for {
		c.mu.Lock()
		f := r.f
		if f.done && f.err != nil {
			// Failed: not even the bytes already written (they may be
			// the ones that did not match).
			c.mu.Unlock()
			return 0, f.err
		}
		avail := f.written
		if !f.done && f.size > 0 && avail >= f.size {
			// The last byte waits for the verdict: a client must not
			// receive a complete response of bytes that turn out not to
			// match their digest.
			avail = f.size - 1
		}
		if r.off < avail && r.off < f.fileEnd && f.ra != nil {
			n := min(int64(len(p)), min(avail, f.fileEnd)-r.off)
			ra, off := f.ra, r.off
			c.mu.Unlock()
			m, err := ra.ReadAt(p[:n], off)
			c.mu.Lock()
			r.off += int64(m)
			if f.spill {
				c.broadcastLocked(f)
			}
			c.mu.Unlock()
			if m > 0 {
				return m, nil
			}
			if err != nil && err != io.EOF {
				return 0, fmt.Errorf("cache: read fill: %w", err)
			}
			continue
		}
		if r.off < avail {
			end := f.winOff + int64(len(f.win))
			if !f.spill || r.off < f.winOff || r.off >= end {
				c.mu.Unlock()
				return 0, errBehind
			}
			m := copy(p, f.win[r.off-f.winOff:min(avail, end)-f.winOff])
			r.off += int64(m)
			c.broadcastLocked(f)
			c.mu.Unlock()
			return m, nil
		}
		if f.done {
			c.mu.Unlock()
			return 0, io.EOF
		}
		ch := f.changed
		c.mu.Unlock()
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
	delete(r.f.readers, r)
	r.c.releaseFillLocked(r.f)
	abandon := r.f.refs == 0 && !r.f.done
	r.c.broadcastLocked(r.f)
	r.c.mu.Unlock()
	if abandon {
		r.f.cancel()
	}
	return nil
}

// Verifiable reports whether the cache can verify, and so cache, content
// of digest (Fill refuses the others). Routes accept more (sha512):
// requests for those go to the upstream uncached.
func Verifiable(digest string) bool {
	// On every cached request: checks without building the hash or an
	// error, as newHash does.
	h, err := v1.NewHash(digest)
	return err == nil && h.Algorithm == "sha256"
}

// newHash returns the hash of a digest, which must be what the rest of
// the hub accepts (v1.NewHash: sha256 and 64 lower-case hex digits).
func newHash(digest string) (hash.Hash, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("cache: bad digest %q: %w", digest, err)
	}
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("cache: unsupported digest %q", digest)
	}
	return sha256.New(), nil
}

func hashDigest(digest string, h hash.Hash) string {
	alg, _, _ := strings.Cut(digest, ":")
	return alg + ":" + hex.EncodeToString(h.Sum(nil))
}
