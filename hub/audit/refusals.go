package audit

import (
	"sync"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Refused requests are rate-limited per key and window: the first few of
// a key are written as they come, the rest of the window are counted into
// one event written when the window ends. A key is the reason plus, for a
// token that verified, its workspace, install and node; a token that did
// not verify (garbage, a wrong signature) has none, so an anonymous flood
// costs one event per reason and window however many clients send it.
const (
	// DefaultRefusalWindow is the aggregation window.
	DefaultRefusalWindow = time.Minute
	// anonymousBurst and tokenBurst are how many refusals of one key are
	// written individually per window.
	anonymousBurst = 1
	tokenBurst     = 20
	// maxRefusalKeys bounds the keys tracked per window; beyond it keys
	// fall back to the reason alone.
	maxRefusalKeys = 1024
)

type refusalKey struct{ reason, workspace, install, node string }

type refusalCount struct {
	n       int64
	summary *store.AuditEvent // the aggregate of refusals beyond the burst
}

// refusals aggregates refused events. Its own lock: Record runs on request
// goroutines.
type refusals struct {
	mu     sync.Mutex
	window time.Duration
	now    func() time.Time
	start  time.Time
	keys   map[refusalKey]*refusalCount
}

func newRefusals(window time.Duration, now func() time.Time) *refusals {
	return &refusals{window: window, now: now, start: now(), keys: map[refusalKey]*refusalCount{}}
}

// admit reports whether e is to be written now; otherwise it has been
// counted into its key's summary. due are summaries of an ended window,
// to be written too.
func (r *refusals) admit(e store.AuditEvent) (write bool, due []store.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	due = r.expireLocked()
	k := refusalKey{e.Reason, e.Workspace, e.Install, e.Node}
	burst := int64(tokenBurst)
	if e.Install == "" {
		burst = anonymousBurst
	}
	c, ok := r.keys[k]
	if !ok && len(r.keys) >= maxRefusalKeys {
		k, burst = refusalKey{reason: e.Reason}, anonymousBurst
		c, ok = r.keys[k]
	}
	if !ok {
		c = &refusalCount{}
		r.keys[k] = c
	}
	c.n++
	if c.n <= burst {
		return true, due
	}
	if c.summary == nil {
		s := e
		s.Count = 0
		if k.install == "" {
			// Aggregated over clients and requests: only the reason and
			// the first request's client stand for them.
			s.Workspace, s.Install, s.Node, s.Cluster = "", "", "", ""
		}
		c.summary = &s
	}
	c.summary.Count++
	return false, due
}

// expire returns the summaries of a window that has ended.
func (r *refusals) expire() []store.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expireLocked()
}

// drain returns every pending summary (on Close).
func (r *refusals) drain() []store.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.collectLocked()
}

func (r *refusals) expireLocked() []store.AuditEvent {
	if r.now().Sub(r.start) < r.window {
		return nil
	}
	return r.collectLocked()
}

func (r *refusals) collectLocked() []store.AuditEvent {
	var out []store.AuditEvent
	for _, c := range r.keys {
		if c.summary != nil {
			out = append(out, *c.summary)
		}
	}
	clear(r.keys)
	r.start = r.now()
	return out
}
