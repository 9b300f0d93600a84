package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullgate/pullgate/pkg/wire"
)

// fakeHub is a Fetcher with controllable answers.
type fakeHub struct {
	mu       sync.Mutex
	calls    atomic.Int64
	n        int
	down     bool
	err      error
	ttl      time.Duration
	now      func() time.Time
	gate     chan struct{} // when set, fetches wait for it
	install  map[string]string
	gen      int64
	epoch    string
	onFetch  func()
	lastSeen wire.TokenRequest
}

func newFakeHub(now func() time.Time) *fakeHub {
	return &fakeHub{ttl: 10 * time.Minute, now: now, gen: 1, epoch: "e1",
		install: map[string]string{"ghcr.io/org/app": "in_a", "ghcr.io/org/other": "in_b", "docker.io/library/nginx": "in_c", "ghcr.io": "in_a"}}
}

func (f *fakeHub) fetch(ctx context.Context, req wire.TokenRequest) (wire.TokenReply, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate, onFetch := f.gate, f.onFetch
	f.lastSeen = req
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return wire.TokenReply{}, ctx.Err()
		}
	}
	if onFetch != nil {
		onFetch()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return wire.TokenReply{}, fmt.Errorf("%w: test says down", ErrUnreachable)
	}
	if f.err != nil {
		return wire.TokenReply{}, f.err
	}
	k, _, _ := Normalize(wire.TokenRequest{Image: req.Image})
	in := f.install[k.Repo]
	if in == "" {
		return wire.TokenReply{}, errors.New("not found")
	}
	f.n++
	ws := "ws_1"
	if in == "in_c" {
		ws = "ws_2"
	}
	return wire.TokenReply{Token: fmt.Sprintf("tok-%d", f.n), ExpiresAt: f.now().Add(f.ttl), InstallID: in,
		Workspace: ws, Generation: f.gen, Epoch: f.epoch, Registry: "ghcr.io"}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T, opts ...Option) (*Cache, *fakeHub, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	hub := newFakeHub(clk.now)
	c := New("node_1", hub.fetch, append([]Option{WithClock(clk.now), WithStaleWait(200 * time.Millisecond)}, opts...)...)
	return c, hub, clk
}

func get(t *testing.T, c *Cache, image string) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Get(ctx, wire.TokenRequest{Image: image})
}

func mustGet(t *testing.T, c *Cache, image string) Result {
	t.Helper()
	r, err := get(t, c, image)
	if err != nil {
		t.Fatalf("get %s: %v", image, err)
	}
	return r
}

func TestNormalize(t *testing.T) {
	sa := func(tok string, ann map[string]string) string {
		k, _, err := Normalize(wire.TokenRequest{Image: "ghcr.io/org/app", ServiceAccountToken: tok, Annotations: ann})
		if err != nil {
			t.Fatal(err)
		}
		return k.SA
	}
	for _, tc := range []struct {
		image, repo, hubImage string
		err                   bool
	}{
		{image: "ghcr.io/org/app:v1", repo: "ghcr.io/org/app", hubImage: "ghcr.io/org/app:v1"},
		{image: "ghcr.io/org/app@sha256:" + fmt.Sprintf("%064d", 0), repo: "ghcr.io/org/app"},
		{image: "ghcr.io/org/app", repo: "ghcr.io/org/app"},
		{image: "nginx", repo: "docker.io/library/nginx"},
		{image: "docker.io/library/nginx:1.27", repo: "docker.io/library/nginx"},
		{image: "index.docker.io/library/nginx", repo: "docker.io/library/nginx"},
		{image: "ghcr.io", repo: "ghcr.io", hubImage: "ghcr.io"},
		{image: "index.docker.io", repo: "docker.io", hubImage: "docker.io"},
		{image: "127.0.0.1:5000", repo: "127.0.0.1:5000"},
		{image: "", err: true},
		{image: "ghcr.io/Org/App", err: true},
		{image: "ghcr.io/org/../app", err: true},
		{image: "ghcr.io/org/app:bad tag", err: true},
	} {
		k, hubReq, err := Normalize(wire.TokenRequest{Image: tc.image})
		if tc.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q): err = %v, want ErrInvalid", tc.image, err)
			}
			continue
		}
		if err != nil || k.Repo != tc.repo || k.SA != "" {
			t.Errorf("Normalize(%q) = %+v, %v; want repo %q", tc.image, k, err, tc.repo)
		}
		if tc.hubImage != "" && hubReq.Image != tc.hubImage {
			t.Errorf("Normalize(%q) sends %q to the hub, want %q", tc.image, hubReq.Image, tc.hubImage)
		}
	}
	if sa("a", nil) == sa("b", nil) || sa("a", nil) == "" {
		t.Error("different service-account tokens must give different keys")
	}
	if sa("a", map[string]string{"k": "v"}) == sa("a", map[string]string{"k": "w"}) {
		t.Error("different annotations must give different keys")
	}
	if sa("a", map[string]string{"k": "v", "x": "y"}) != sa("a", map[string]string{"x": "y", "k": "v"}) {
		t.Error("annotation order must not matter")
	}
}

func TestRefreshAt(t *testing.T) {
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		ttl, want time.Duration
	}{
		{10 * time.Minute, 8 * time.Minute},     // 20%
		{2 * time.Minute, time.Minute},          // 1m floor
		{time.Hour, 48 * time.Minute},           // 20%
		{30 * time.Second, -30 * time.Second},   // never served from cache
		{5 * time.Minute, 4 * time.Minute},      // 1m == 20%
		{6 * time.Minute, 6*time.Minute - 72e9}, // 20% = 72s
	} {
		if got := RefreshAt(now, now.Add(tc.ttl)).Sub(now); got != tc.want {
			t.Errorf("ttl %s: served for %s, want %s", tc.ttl, got, tc.want)
		}
	}
}

func TestHitMissAndRefresh(t *testing.T) {
	c, hub, clk := setup(t)
	first := mustGet(t, c, "ghcr.io/org/app:v1")
	if first.Source != SourceHub {
		t.Fatalf("first request from %s", first.Source)
	}
	for _, img := range []string{"ghcr.io/org/app:v1", "ghcr.io/org/app:v2", "ghcr.io/org/app@sha256:" + fmt.Sprintf("%064d", 1)} {
		r := mustGet(t, c, img)
		if r.Source != SourceCache || r.Reply.Token != first.Reply.Token {
			t.Errorf("%s: %s %s, want the cached token", img, r.Source, r.Reply.Token)
		}
	}
	if n := hub.calls.Load(); n != 1 {
		t.Fatalf("hub asked %d times, want 1", n)
	}
	other := mustGet(t, c, "ghcr.io/org/other")
	if other.Reply.Token == first.Reply.Token {
		t.Fatal("another repository must not share the token")
	}
	clk.add(8*time.Minute + time.Second) // past expiry − 20%
	r := mustGet(t, c, "ghcr.io/org/app")
	if r.Source != SourceHub || r.Reply.Token == first.Reply.Token {
		t.Fatalf("after the refresh point: %s %s, want a new token from the hub", r.Source, r.Reply.Token)
	}
}

func TestServiceAccountTokensKeyed(t *testing.T) {
	c, hub, _ := setup(t)
	ask := func(sa string) Result {
		r, err := c.Get(context.Background(), wire.TokenRequest{Image: "ghcr.io/org/app", ServiceAccountToken: sa})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := ask("sa-token-a"), ask("sa-token-b")
	if a.Reply.Token == b.Reply.Token || hub.calls.Load() != 2 {
		t.Fatal("two service-account tokens must not share a cache entry")
	}
	if r := ask("sa-token-a"); r.Source != SourceCache || r.Reply.Token != a.Reply.Token {
		t.Fatal("same service-account token must hit the cache")
	}
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Reply.Token == a.Reply.Token {
		t.Fatal("a request without a service-account token must not get one issued for a pod")
	}
}

// In a synctest bubble: the requests are released once every one of them
// waits, rather than after a guessed real-time pause.
func TestConcurrentMissesShareOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, hub, _ := setup(t)
		hub.gate = make(chan struct{})
		const n = 50
		var wg sync.WaitGroup
		tokens := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := get(t, c, fmt.Sprintf("ghcr.io/org/app:v%d", i))
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- r.Reply.Token
			}(i)
		}
		synctest.Wait() // every request waits: in the flight or at the gate
		close(hub.gate)
		wg.Wait()
		close(tokens)
		seen := map[string]bool{}
		for tok := range tokens {
			seen[tok] = true
		}
		if calls := hub.calls.Load(); calls != 1 || len(seen) != 1 {
			t.Fatalf("%d hub calls, %d distinct tokens; want 1 and 1", calls, len(seen))
		}
	})
}

func TestRevocations(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rev            wire.Revocation
		gone, kept     []string // images whose tokens are dropped / kept
		refused        bool
		resync         bool
		startSeq, rSeq uint64
	}{
		{name: "install", rev: wire.Revocation{Installs: []string{"in_a"}}, gone: []string{"ghcr.io/org/app"}, kept: []string{"ghcr.io/org/other", "nginx"}},
		{name: "workspace", rev: wire.Revocation{Workspaces: []string{"ws_1"}}, gone: []string{"ghcr.io/org/app", "ghcr.io/org/other"}, kept: []string{"nginx"}},
		{name: "other node", rev: wire.Revocation{Nodes: []string{"node_2"}}, kept: []string{"ghcr.io/org/app", "nginx"}},
		{name: "this node", rev: wire.Revocation{Nodes: []string{"node_2", "node_1"}}, gone: []string{"ghcr.io/org/app", "nginx"}, refused: true},
		{name: "cluster", rev: wire.Revocation{Cluster: true}, gone: []string{"ghcr.io/org/app", "nginx"}, refused: true},
		{name: "gap", rev: wire.Revocation{Installs: []string{"in_x"}}, kept: []string{"nginx"}, resync: true, startSeq: 5, rSeq: 7},
		{name: "reset", rev: wire.Revocation{Installs: []string{"in_x"}}, kept: []string{"nginx"}, resync: true, startSeq: 5, rSeq: 1},
		{name: "duplicate", rev: wire.Revocation{}, resync: true, startSeq: 5, rSeq: 5},
		{name: "next", rev: wire.Revocation{}, startSeq: 5, rSeq: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := setup(t)
			c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: tc.startSeq, Installs: map[string]wire.InstallState{
				"in_a": {Generation: 1, Epoch: "e1"}, "in_b": {Generation: 1, Epoch: "e1"}, "in_c": {Generation: 1, Epoch: "e1"}}})
			before := map[string]string{}
			for _, img := range append(append([]string{}, tc.gone...), tc.kept...) {
				before[img] = mustGet(t, c, img).Reply.Token
			}
			r := tc.rev
			r.Seq = tc.rSeq
			if r.Seq == 0 {
				r.Seq = tc.startSeq + 1
			}
			if got := c.ApplyRevocation(r); got != tc.resync {
				t.Fatalf("resync = %v, want %v", got, tc.resync)
			}
			if st := c.Status(); st.Refused != tc.refused || st.Stale != tc.resync || st.Seq != r.Seq {
				t.Fatalf("status %+v after %+v", st, r)
			}
			if tc.refused {
				if _, err := get(t, c, "ghcr.io/org/app"); !errors.Is(err, ErrRefused) {
					t.Fatalf("refused node served: %v", err)
				}
				return
			}
			if tc.resync {
				c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: r.Seq, Installs: map[string]wire.InstallState{
					"in_a": {Generation: 1, Epoch: "e1"}, "in_b": {Generation: 1, Epoch: "e1"}, "in_c": {Generation: 1, Epoch: "e1"}}})
			}
			for _, img := range tc.gone {
				if r := mustGet(t, c, img); r.Reply.Token == before[img] || r.Source != SourceHub {
					t.Errorf("%s: revoked token still served", img)
				}
			}
			for _, img := range tc.kept {
				if r := mustGet(t, c, img); r.Reply.Token != before[img] || r.Source != SourceCache {
					t.Errorf("%s: unaffected token dropped", img)
				}
			}
		})
	}
}

func TestSyncDropsChangedInstalls(t *testing.T) {
	c, hub, _ := setup(t)
	a := mustGet(t, c, "ghcr.io/org/app")
	b := mustGet(t, c, "ghcr.io/org/other")
	n := mustGet(t, c, "nginx")
	hub.gen = 2
	c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: 3, Installs: map[string]wire.InstallState{
		"in_a": {Generation: 1, Epoch: "e1"}, // same: kept
		"in_b": {Generation: 2, Epoch: "e1"}, // new generation: dropped
		// in_c missing: dropped
	}})
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Reply.Token != a.Reply.Token {
		t.Error("unchanged install dropped")
	}
	if r := mustGet(t, c, "ghcr.io/org/other"); r.Reply.Token == b.Reply.Token {
		t.Error("install with a new generation still served")
	}
	if r := mustGet(t, c, "nginx"); r.Reply.Token == n.Reply.Token {
		t.Error("deleted install still served")
	}
	c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: 3, Installs: map[string]wire.InstallState{"in_a": {Generation: 1, Epoch: "e2"}}})
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Reply.Token == a.Reply.Token {
		t.Error("install with a new epoch still served")
	}
}

// A revocation that lands while the token is being fetched must not let
// that (already revoked) token be cached or served.
func TestRevocationDuringFetch(t *testing.T) {
	c, hub, _ := setup(t)
	var once sync.Once
	hub.onFetch = func() {
		once.Do(func() { c.ApplyRevocation(wire.Revocation{Seq: 1, Installs: []string{"in_a"}}) })
	}
	r := mustGet(t, c, "ghcr.io/org/app")
	if r.Reply.Token != "tok-2" || hub.calls.Load() != 2 {
		t.Fatalf("got %s after %d calls; want the second token (the first was revoked in flight)", r.Reply.Token, hub.calls.Load())
	}
	// A revocation that does not match the reply does not cost a retry.
	hub.onFetch = func() { c.ApplyRevocation(wire.Revocation{Seq: c.Seq() + 1, Installs: []string{"in_zzz"}}) }
	if r := mustGet(t, c, "ghcr.io/org/other"); r.Source != SourceHub || hub.calls.Load() != 3 {
		t.Fatalf("unrelated revocation: %d calls", hub.calls.Load())
	}
}

// In a synctest bubble: the stale wait's timer and the resync's delay are
// on the bubble's clock, so the wait measured is exactly the delay.
func TestStaleWaitsForResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, hub, _ := setup(t, WithStaleWait(2*time.Second))
		old := mustGet(t, c, "ghcr.io/org/app")
		c.MarkStale()
		// The resync (which drops in_a) lands 100ms into the request.
		go func() {
			tk := c.BeginSync()
			time.Sleep(100 * time.Millisecond)
			c.ApplySync(tk, wire.SyncReply{Seq: 1, Installs: map[string]wire.InstallState{"in_b": {Generation: 1, Epoch: "e1"}}})
		}()
		start := time.Now()
		r := mustGet(t, c, "ghcr.io/org/app")
		if r.Reply.Token == old.Reply.Token {
			t.Fatal("token revoked during the disconnect served after the reconnect")
		}
		if waited := time.Since(start); waited < 80*time.Millisecond {
			t.Fatalf("request did not wait for the resync (%s)", waited)
		}
		_ = hub
	})
}

func TestStaleSyncStartedBeforeReconnectDoesNotClear(t *testing.T) {
	c, _, _ := setup(t)
	tk := c.BeginSync() // a periodic sync in flight …
	c.MarkStale()       // … when the connection comes back
	c.ApplySync(tk, wire.SyncReply{Seq: 1, Installs: map[string]wire.InstallState{}})
	if !c.Status().Stale {
		t.Fatal("a sync sent before the reconnect must not end the stale state")
	}
	c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: 1, Installs: map[string]wire.InstallState{}})
	if c.Status().Stale {
		t.Fatal("a sync sent after the reconnect must end it")
	}
}

func TestStaleTimeoutNeverServesCache(t *testing.T) {
	c, hub, _ := setup(t, WithStaleWait(50*time.Millisecond))
	old := mustGet(t, c, "ghcr.io/org/app")
	c.MarkStale()
	// Resync never comes; the hub answers directly: a fresh token.
	r := mustGet(t, c, "ghcr.io/org/app")
	if r.Source != SourceHub || r.Reply.Token == old.Reply.Token {
		t.Fatalf("stale cache served (%s)", r.Source)
	}
	// Hub unreachable too: an error, not the cached token.
	hub.down = true
	if _, err := get(t, c, "ghcr.io/org/app"); !errors.Is(err, ErrResyncPending) {
		t.Fatalf("err = %v, want ErrResyncPending", err)
	}
}

func TestFallbackWhileHubUnreachable(t *testing.T) {
	c, hub, clk := setup(t)
	tok := mustGet(t, c, "ghcr.io/org/app").Reply.Token
	hub.down = true
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Source != SourceCache || r.Reply.Token != tok {
		t.Fatal("fresh cached token not served while the hub is down")
	}
	clk.add(9 * time.Minute) // past the refresh point, 1m left
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Source != SourceFallback || r.Reply.Token != tok {
		t.Fatalf("still-valid token not served while the hub is down: %s", r.Source)
	}
	clk.add(55 * time.Second) // 5s left: too short
	if _, err := get(t, c, "ghcr.io/org/app"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if _, err := get(t, c, "ghcr.io/org/other"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("nothing cached: err = %v, want ErrUnreachable", err)
	}
}

func TestRefusedLiftedByLaterSync(t *testing.T) {
	c, _, _ := setup(t)
	mustGet(t, c, "ghcr.io/org/app")
	tk := c.BeginSync()
	c.Refuse()
	if st := c.Status(); !st.Refused || st.Entries != 0 {
		t.Fatalf("status after refuse: %+v", st)
	}
	c.ApplySync(tk, wire.SyncReply{Installs: map[string]wire.InstallState{}})
	if !c.Status().Refused {
		t.Fatal("a sync sent before the refusal must not lift it")
	}
	c.ApplySync(c.BeginSync(), wire.SyncReply{Installs: map[string]wire.InstallState{"in_a": {Generation: 1, Epoch: "e1"}}})
	if c.Status().Refused {
		t.Fatal("a later successful sync lifts the refusal")
	}
	mustGet(t, c, "ghcr.io/org/app")
}

func TestBadHubReplies(t *testing.T) {
	for name, mod := range map[string]func(*wire.TokenReply){
		"no token":   func(r *wire.TokenReply) { r.Token = "" },
		"no install": func(r *wire.TokenReply) { r.InstallID = "" },
		"expired":    func(r *wire.TokenReply) { r.ExpiresAt = time.Unix(1, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			c := New("n", func(context.Context, wire.TokenRequest) (wire.TokenReply, error) {
				r := wire.TokenReply{Token: "t", InstallID: "i", ExpiresAt: time.Now().Add(time.Hour)}
				mod(&r)
				return r, nil
			})
			if _, err := c.Get(context.Background(), wire.TokenRequest{Image: "ghcr.io/a/b"}); err == nil {
				t.Fatal("bad reply accepted")
			}
		})
	}
}

func TestHubErrorsPassThrough(t *testing.T) {
	c, hub, _ := setup(t)
	sentinel := errors.New("hub says no")
	hub.err = sentinel
	if _, err := get(t, c, "ghcr.io/org/app"); !errors.Is(err, sentinel) {
		t.Fatalf("err = %v", err)
	}
	if c.Status().Entries != 0 {
		t.Fatal("error cached")
	}
}

func TestWaiterContextCancelled(t *testing.T) {
	c, hub, _ := setup(t)
	hub.gate = make(chan struct{})
	defer close(hub.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, wire.TokenRequest{Image: "ghcr.io/org/app"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleWhileDisconnectedServesCache(t *testing.T) {
	var up atomic.Bool
	c, hub, _ := setup(t, WithConnected(up.Load), WithStaleWait(time.Second))
	up.Store(true)
	tok := mustGet(t, c, "ghcr.io/org/app").Reply.Token
	up.Store(false)
	c.MarkStale() // the connection dropped
	hub.down = true
	start := time.Now()
	if r := mustGet(t, c, "ghcr.io/org/app"); r.Reply.Token != tok || time.Since(start) > 100*time.Millisecond {
		t.Fatal("disconnected node must serve its cache at once")
	}
	up.Store(true) // reconnected, resync not done: wait, then refuse the cache
	hub.down = false
	start = time.Now()
	r := mustGet(t, c, "ghcr.io/org/app")
	if r.Source != SourceHub || time.Since(start) < time.Second {
		t.Fatalf("connected but stale: %s after %s; want a wait, then a fresh token", r.Source, time.Since(start))
	}
}

func TestSourcesAndSequences(t *testing.T) {
	c, _, _ := setup(t)
	sync := func(src string, seq uint64) {
		c.ApplySync(c.BeginSync(), wire.SyncReply{Source: src, Seq: seq, Installs: map[string]wire.InstallState{}})
	}
	rev := func(src string, seq uint64) bool { return c.ApplyRevocation(wire.Revocation{Source: src, Seq: seq}) }
	sync("A", 10)
	for _, step := range []struct {
		src    string
		seq    uint64
		resync bool
		why    string
	}{
		{"A", 11, false, "in order"},
		{"A", 12, false, "in order"},
		{"B", 1, true, "a replica not seen before"},
		{"B", 2, false, "that replica in order"},
		{"A", 13, false, "first replica still in order"},
		{"A", 15, true, "gap"},
		{"A", 16, false, "in order after the gap"},
		{"A", 16, true, "duplicate"},
		{"C", 1, true, "hub restarted: new process"},
	} {
		if got := rev(step.src, step.seq); got != step.resync {
			t.Fatalf("%s %d (%s): resync = %v", step.src, step.seq, step.why, got)
		}
		sync(step.src, step.seq) // the resync (or none) completes
	}
	if c.Seq() != 1 || c.Status().Stale {
		t.Fatalf("seq %d status %+v", c.Seq(), c.Status())
	}
	// A sync reply older than a push of the same source applied meanwhile
	// does not move the sequence back.
	tk := c.BeginSync()
	rev("C", 2)
	c.ApplySync(tk, wire.SyncReply{Source: "C", Seq: 1, Installs: map[string]wire.InstallState{}})
	if rev("C", 3) {
		t.Fatal("sequence moved back by an older sync reply")
	}
}

// LiveUntil: the latest expiry of unrevoked tokens for a registry, which
// keeps the registry's containerd mirror in place.
func TestLiveUntil(t *testing.T) {
	c, _, clk := setup(t)
	c.ApplySync(c.BeginSync(), wire.SyncReply{Seq: 1, Installs: map[string]wire.InstallState{
		"in_a": {Generation: 1, Epoch: "e1"}, "in_b": {Generation: 1, Epoch: "e1"}}})
	if !c.LiveUntil("ghcr.io").IsZero() {
		t.Fatal("live tokens in an empty cache")
	}
	a := mustGet(t, c, "ghcr.io/org/app")
	clk.add(time.Minute)
	b := mustGet(t, c, "ghcr.io/org/other")
	if got := c.LiveUntil("ghcr.io"); !got.Equal(b.Reply.ExpiresAt) || !got.After(a.Reply.ExpiresAt) {
		t.Fatalf("LiveUntil = %v, want %v", got, b.Reply.ExpiresAt)
	}
	if !c.LiveUntil("quay.io").IsZero() {
		t.Fatal("live tokens for another registry")
	}
	c.ApplyRevocation(wire.Revocation{Seq: 2, Installs: []string{"in_b"}})
	if got := c.LiveUntil("ghcr.io"); !got.Equal(a.Reply.ExpiresAt) {
		t.Fatalf("after revoking in_b: %v, want %v", got, a.Reply.ExpiresAt)
	}
	c.ApplyRevocation(wire.Revocation{Seq: 3, Cluster: true})
	if !c.LiveUntil("ghcr.io").IsZero() {
		t.Fatal("live tokens after the cluster was revoked")
	}
}
