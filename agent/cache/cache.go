// Package cache is the node agent's install-token cache and the rules that
// keep it honest:
//
//   - a token is served until shortly before it expires (expiry minus
//     max(1m, 20% of its lifetime)); after that the hub is asked again;
//   - concurrent identical misses share one hub round trip;
//   - revocations pushed by the hub drop matching tokens at once; each hub
//     process (Source) numbers its pushes, and a gap, or a source not seen
//     before (another replica, a restarted hub), makes the cache stale
//     until a resync with the hub's live state completes;
//   - from a disconnect until the resync after the reconnect the cache is
//     stale too: once connected again, requests wait (bounded) for the
//     resync instead of being served a token that may have been revoked
//     while the node was disconnected;
//   - while the hub is unreachable, cached tokens that are still valid are
//     served (the hub's proxy refuses revoked tokens itself);
//   - when the hub refuses the node (node revoked, cluster deleted), the
//     cache is emptied and serves nothing.
//
// Keys are the image's repository (tags and digests of one repository
// share a token) plus a hash of the pod's service-account token and
// annotations when the kubelet passes them: never unverified claims.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pullgate/pullgate/agent/metrics"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Errors of Get. Fetcher errors other than ErrUnreachable are returned
// unchanged.
var (
	// ErrInvalid wraps a malformed request (image reference).
	ErrInvalid = errors.New("invalid request")
	// ErrUnreachable must be wrapped by a Fetcher's error when the hub
	// could not be asked (disconnected, no responders, timeout).
	ErrUnreachable = errors.New("hub unreachable")
	// ErrRefused: the hub refuses this node.
	ErrRefused = errors.New("the hub refuses this node (node revoked or cluster deleted)")
	// ErrResyncPending: after a reconnect the resync did not complete in
	// time and the hub could not be asked directly either.
	ErrResyncPending = errors.New("waiting for a resync with the hub")
)

// Fetcher asks the hub for a token.
type Fetcher func(ctx context.Context, req wire.TokenRequest) (wire.TokenReply, error)

// Source says where a served token came from.
type Source string

const (
	SourceCache    Source = "cache"
	SourceHub      Source = "hub"
	SourceFallback Source = "cache_fallback" // hub unreachable, cached token still valid
)

// Result is a served token.
type Result struct {
	Reply  wire.TokenReply
	Source Source
}

// Key identifies what a token was asked for.
type Key struct {
	// Repo is "host/path" of the image, or the canonical registry host for
	// a registry-level request (imageref.RegistryOnly).
	Repo string
	// SA is a hash of the service-account token and annotations, empty
	// without them.
	SA string
}

func (k Key) String() string {
	if k.SA == "" {
		return k.Repo
	}
	return k.Repo + "|sa:" + k.SA[:16]
}

// Normalize returns the cache key of a request and the request to send to
// the hub (a registry-level request carries the canonical host).
func Normalize(req wire.TokenRequest) (Key, wire.TokenRequest, error) {
	var k Key
	switch {
	case req.Image == "":
		return k, req, fmt.Errorf("%w: image is required", ErrInvalid)
	case len(req.Image) > 1024:
		return k, req, fmt.Errorf("%w: image reference longer than 1024 bytes", ErrInvalid)
	case imageref.RegistryOnly(req.Image):
		h, err := imageref.CanonicalHost(req.Image)
		if err != nil {
			return k, req, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		k.Repo = h
		req.Image = h
	default:
		r, _, err := imageref.ParseImage(req.Image)
		if err != nil {
			return k, req, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		k.Repo = r.String()
	}
	if req.ServiceAccountToken != "" || len(req.Annotations) > 0 {
		h := sha256.New()
		h.Write([]byte(req.ServiceAccountToken))
		keys := make([]string, 0, len(req.Annotations))
		for a := range req.Annotations {
			keys = append(keys, a)
		}
		slices.Sort(keys)
		for _, a := range keys {
			fmt.Fprintf(h, "\x00%d:%s=%d:%s", len(a), a, len(req.Annotations[a]), req.Annotations[a])
		}
		k.SA = hex.EncodeToString(h.Sum(nil))
	}
	return k, req, nil
}

type entry struct {
	reply     wire.TokenReply
	refreshAt time.Time
}

// mutation is a revocation or resync applied at a generation; a fetch that
// was in flight across it checks its reply against it.
type mutation struct {
	gen     uint64
	revokes func(wire.TokenReply) bool
}

const maxMutations = 256

// Cache is the token cache. The zero value is not usable; call New.
type Cache struct {
	fetch       Fetcher
	nodeID      string
	now         func() time.Time
	staleWait   time.Duration
	fallbackMin time.Duration
	log         *slog.Logger
	m           *metrics.Metrics
	connected   func() bool
	group       singleflight.Group

	mu        sync.Mutex
	entries   map[Key]*entry
	seqs      map[string]uint64 // last sequence number per hub process
	source    string            // the hub process of the last resync
	synced    bool
	stale     bool
	staleGen  uint64
	fresh     chan struct{} // closed while not stale
	refused   bool
	refuseGen uint64
	gen       uint64
	recent    []mutation
}

// Option configures a Cache.
type Option func(*Cache)

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// WithStaleWait bounds how long a request waits for a pending resync
// (default 5s).
func WithStaleWait(d time.Duration) Option { return func(c *Cache) { c.staleWait = d } }

// WithFallbackMin is the least remaining life of a cached token served
// while the hub is unreachable (default 10s).
func WithFallbackMin(d time.Duration) Option { return func(c *Cache) { c.fallbackMin = d } }

// WithConnected tells the cache whether the hub connection is up. While it
// is down, a stale cache is still served (the node is disconnected and
// serves what it has); once it is up, a stale cache waits for the resync.
// This closes the window between a reconnect and the reconnect callback.
func WithConnected(f func() bool) Option { return func(c *Cache) { c.connected = f } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// WithMetrics sets the metrics.
func WithMetrics(m *metrics.Metrics) Option { return func(c *Cache) { c.m = m } }

// New returns an empty cache for node nodeID fetching misses with fetch.
func New(nodeID string, fetch Fetcher, opts ...Option) *Cache {
	c := &Cache{
		fetch: fetch, nodeID: nodeID, now: time.Now, staleWait: 5 * time.Second, fallbackMin: 10 * time.Second,
		log: slog.Default(), entries: map[Key]*entry{}, seqs: map[string]uint64{}, fresh: make(chan struct{}),
		connected: func() bool { return true },
	}
	for _, o := range opts {
		o(c)
	}
	if c.m == nil {
		c.m = metrics.New()
	}
	close(c.fresh)
	return c
}

// RefreshAt is when a token fetched at now stops being served from the
// cache: expiry minus max(1m, 20% of its remaining lifetime).
func RefreshAt(now, expires time.Time) time.Time {
	margin := max(time.Minute, expires.Sub(now)/5)
	return expires.Add(-margin)
}

// Get returns a token for req: from the cache when fresh, otherwise from
// the hub (one round trip shared by concurrent identical requests).
func (c *Cache) Get(ctx context.Context, req wire.TokenRequest) (Result, error) {
	key, hubReq, err := Normalize(req)
	if err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	refused := c.refused
	c.mu.Unlock()
	if refused {
		return Result{}, ErrRefused
	}
	synced, err := c.waitFresh(ctx)
	if err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	if c.refused {
		c.mu.Unlock()
		return Result{}, ErrRefused
	}
	if e := c.entries[key]; synced && e != nil && c.now().Before(e.refreshAt) {
		r := e.reply
		c.mu.Unlock()
		c.m.CacheHits.Inc()
		return Result{Reply: r, Source: SourceCache}, nil
	}
	c.mu.Unlock()
	c.m.CacheMisses.Inc()

	// One round trip per key; a request that could not wait for a resync
	// (synced == false) must not fall back to the cache, so it flies alone.
	sfKey := key.Repo + "\x00" + key.SA
	if !synced {
		sfKey += "\x00unsynced"
	}
	ch := c.group.DoChan(sfKey, func() (any, error) {
		// Detached from the first caller: the others share the result.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return c.fill(fctx, key, hubReq, synced)
	})
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Result{}, res.Err
		}
		return res.Val.(Result), nil
	}
}

// fill asks the hub and stores the reply, or falls back to a still valid
// cached token when the hub is unreachable.
func (c *Cache) fill(ctx context.Context, key Key, req wire.TokenRequest, synced bool) (Result, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()

		reply, err := c.fetch(ctx, req)
		if errors.Is(err, ErrUnreachable) {
			if !synced {
				return Result{}, fmt.Errorf("%w: %w", ErrResyncPending, err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.refused {
				return Result{}, ErrRefused
			}
			if e := c.entries[key]; e != nil && e.reply.ExpiresAt.Sub(c.now()) >= c.fallbackMin {
				return Result{Reply: e.reply, Source: SourceFallback}, nil
			}
			return Result{}, err
		}
		if err != nil {
			return Result{}, err
		}
		if err := checkReply(reply, c.now()); err != nil {
			return Result{}, err
		}

		c.mu.Lock()
		if c.refused {
			c.mu.Unlock()
			return Result{}, ErrRefused
		}
		if c.revokedSince(gen, reply) {
			c.mu.Unlock()
			// Issued before a revocation that was applied while this
			// request was in flight: never hand it out; ask again.
			if attempt == 0 {
				c.log.Debug("token revoked while being fetched; asking the hub again", "repo", key.Repo)
				continue
			}
			return Result{}, fmt.Errorf("%w: the token was revoked while it was being fetched", ErrResyncPending)
		}
		now := c.now()
		if r := RefreshAt(now, reply.ExpiresAt); r.After(now) {
			c.entries[key] = &entry{reply: reply, refreshAt: r}
		} else {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return Result{Reply: reply, Source: SourceHub}, nil
	}
}

func checkReply(r wire.TokenReply, now time.Time) error {
	switch {
	case r.Token == "":
		return errors.New("hub reply has no token")
	case r.InstallID == "":
		return errors.New("hub reply has no install id")
	case !r.ExpiresAt.After(now):
		return fmt.Errorf("hub replied with a token that expired at %s (clock skew?)", r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// revokedSince reports whether a mutation applied after gen revokes r.
// Caller holds c.mu.
func (c *Cache) revokedSince(gen uint64, r wire.TokenReply) bool {
	if gen == c.gen {
		return false
	}
	if len(c.recent) == 0 || c.recent[0].gen > gen+1 {
		return true // older than what we remember: assume the worst
	}
	for _, m := range c.recent {
		if m.gen > gen && m.revokes(r) {
			return true
		}
	}
	return false
}

// record notes a mutation. Caller holds c.mu.
func (c *Cache) record(revokes func(wire.TokenReply) bool) {
	c.gen++
	c.recent = append(c.recent, mutation{gen: c.gen, revokes: revokes})
	if len(c.recent) > maxMutations {
		c.recent = slices.Delete(c.recent, 0, len(c.recent)-maxMutations)
	}
}

// LiveUntil is the latest expiry of the unrevoked tokens the cache holds
// for an upstream registry (the zero time when none): the kubelet may
// present them until then. Refreshed tokens outlive the ones they replace.
func (c *Cache) LiveUntil(registry string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var until time.Time
	if c.refused {
		return until
	}
	for _, e := range c.entries {
		if !e.reply.Hub && e.reply.Registry == registry && e.reply.ExpiresAt.After(until) {
			until = e.reply.ExpiresAt
		}
	}
	return until
}

// dropLocked deletes the entries revokes matches and returns how many.
func (c *Cache) dropLocked(revokes func(wire.TokenReply) bool) int {
	n := 0
	for k, e := range c.entries {
		if revokes(e.reply) {
			delete(c.entries, k)
			n++
		}
	}
	c.m.Purged.Add(float64(n))
	return n
}

// waitFresh waits (bounded) while the cache is stale and the hub is
// connected. It reports whether the cache may be used.
func (c *Cache) waitFresh(ctx context.Context) (bool, error) {
	c.mu.Lock()
	stale, ch := c.stale, c.fresh
	c.mu.Unlock()
	if !stale || !c.connected() {
		return true, nil
	}
	t := time.NewTimer(c.staleWait)
	defer t.Stop()
	select {
	case <-ch:
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// MarkStale makes requests wait for the next resync once connected (call
// it when the connection is lost, and on a reconnect).
func (c *Cache) MarkStale() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markStaleLocked()
}

func (c *Cache) markStaleLocked() {
	c.staleGen++
	if !c.stale {
		c.stale = true
		c.fresh = make(chan struct{})
	}
}

// ApplyRevocation drops what r revokes. It reports whether a resync is
// needed (a gap in the source's sequence, or a source not seen before), in
// which case the cache is stale until then.
func (c *Cache) ApplyRevocation(r wire.Revocation) (resync bool) {
	all := r.Cluster || slices.Contains(r.Nodes, c.nodeID)
	installs, workspaces := r.Installs, r.Workspaces
	revokes := func(t wire.TokenReply) bool {
		return all || slices.Contains(installs, t.InstallID) || slices.Contains(workspaces, t.Workspace)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.dropLocked(revokes)
	c.record(revokes)
	c.m.Revocations.Inc()
	if all {
		c.refuseLocked()
	}
	last, known := c.seqs[r.Source]
	c.setSeqLocked(r.Source, r.Seq)
	if !known || r.Seq != last+1 {
		if known {
			c.log.Info("revocation sequence gap; resyncing", "source", r.Source, "last", last, "got", r.Seq)
		} else {
			c.log.Info("revocation from a hub process not seen before; resyncing", "source", r.Source, "seq", r.Seq)
		}
		c.markStaleLocked()
		resync = true
	}
	c.log.Info("revocation applied", "seq", r.Seq, "installs", len(installs), "workspaces", len(workspaces),
		"node_or_cluster", all, "dropped", n)
	return resync
}

// SyncTicket remembers the state when a resync request was sent.
type SyncTicket struct{ staleGen, gen uint64 }

// BeginSync is called right before a sync request is sent.
func (c *Cache) BeginSync() SyncTicket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return SyncTicket{staleGen: c.staleGen, gen: c.gen}
}

// setSeqLocked records a source's sequence number (a handful of sources
// at most: hub replicas and restarts; the map is reset if it grows).
func (c *Cache) setSeqLocked(source string, seq uint64) {
	if _, ok := c.seqs[source]; !ok && len(c.seqs) >= 64 {
		c.seqs = map[string]uint64{}
	}
	c.seqs[source] = seq
}

// Seq is the last sequence number seen from the hub process that answered
// the last resync.
func (c *Cache) Seq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seqs[c.source]
}

// ApplySync drops every token whose install the hub no longer lists, or
// lists in another state. The cache is fresh again when no reconnect or gap
// happened since t was taken; a refusal older than t is lifted (the hub
// answered the node, so it accepts it again).
func (c *Cache) ApplySync(t SyncTicket, r wire.SyncReply) {
	installs := r.Installs
	revokes := func(tr wire.TokenReply) bool {
		st, ok := installs[tr.InstallID]
		return !ok || st.Generation != tr.Generation || st.Epoch != tr.Epoch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.dropLocked(revokes)
	now := c.now()
	for k, e := range c.entries {
		if !e.reply.ExpiresAt.After(now) {
			delete(c.entries, k)
		}
	}
	c.record(revokes)
	// A push of the same source applied while the sync was in flight may
	// be newer than the reply's sequence number.
	if cur, ok := c.seqs[r.Source]; !ok || r.Seq > cur {
		c.setSeqLocked(r.Source, r.Seq)
	}
	c.source = r.Source
	c.synced = true
	if c.refused && c.refuseGen <= t.gen {
		c.refused = false
		c.m.Refused.Set(0)
		c.log.Info("the hub accepts this node again; serving")
	}
	if c.stale && c.staleGen == t.staleGen {
		c.stale = false
		close(c.fresh)
	}
	if n > 0 {
		c.log.Info("resync dropped revoked tokens", "dropped", n, "seq", r.Seq)
	}
}

// Refuse empties the cache and serves nothing until a later resync
// succeeds: the hub refused the node's identity.
func (c *Cache) Refuse() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuseLocked()
}

func (c *Cache) refuseLocked() {
	c.dropLocked(func(wire.TokenReply) bool { return true })
	c.record(func(wire.TokenReply) bool { return true })
	c.refused = true
	c.refuseGen = c.gen
	c.m.Refused.Set(1)
}

// Status is a snapshot for health reporting.
type Status struct {
	Entries int    `json:"entries"`
	Seq     uint64 `json:"seq"`
	Synced  bool   `json:"synced"` // at least one resync completed
	Stale   bool   `json:"stale"`
	Refused bool   `json:"refused"`
}

// Status returns a snapshot.
func (c *Cache) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Entries: len(c.entries), Seq: c.seqs[c.source], Synced: c.synced, Stale: c.stale, Refused: c.refused}
}
