package cache

import (
	"sync"
	"time"
)

// Confirmations remember that the upstream confirmed, with one
// credential, that one repository has a reference: a digest (blob or
// manifest), or a tag with the digest it pointed at. The proxy serves a
// cached entry to an install only under a confirmation for that install's
// own credential, so a tenant whose credential cannot read a repository
// never gets its bytes from the cache, even when another tenant cached
// them (distribution keeps per-repository blob links for the same
// reason).
//
// Confirmations are kept for the stale window after they stop being
// fresh, so that serve-stale can still tell which credential once had
// access; the map is bounded.
type Confirmations struct {
	mu  sync.Mutex
	max int
	m   map[ConfirmKey]Confirmation
}

// ConfirmKey names what was confirmed. Credential identifies the
// credential and its version (a rotated secret must confirm again).
type ConfirmKey struct {
	Credential string
	Repository string // host/path
	Reference  string // digest or tag
}

// Confirmation is what the upstream answered.
type Confirmation struct {
	Digest    string
	MediaType string
	Size      int64
	At        time.Time
}

// NewConfirmations returns a set bounded to max keys.
func NewConfirmations(max int) *Confirmations {
	if max <= 0 {
		max = 100000
	}
	return &Confirmations{max: max, m: map[ConfirmKey]Confirmation{}}
}

// Get returns the confirmation for k if it is younger than maxAge.
func (c *Confirmations) Get(k ConfirmKey, now time.Time, maxAge time.Duration) (Confirmation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok || now.Sub(v.At) > maxAge || now.Before(v.At.Add(-time.Minute)) {
		return Confirmation{}, false
	}
	return v, true
}

// Put records a confirmation.
func (c *Confirmations) Put(k ConfirmKey, v Confirmation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Full: drop the older half of the time range. Bounded memory
		// matters more than saving a HEAD.
		var oldest, newest time.Time
		for _, e := range c.m {
			if oldest.IsZero() || e.At.Before(oldest) {
				oldest = e.At
			}
			if e.At.After(newest) {
				newest = e.At
			}
		}
		mid := oldest.Add(newest.Sub(oldest) / 2)
		for key, e := range c.m {
			if !e.At.After(mid) {
				delete(c.m, key)
			}
		}
	}
	c.m[k] = v
}

// Forget drops every confirmation of a credential for a repository and
// reference: the upstream now refuses it.
func (c *Confirmations) Forget(k ConfirmKey) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
