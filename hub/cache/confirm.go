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
// access. They are bounded in all and per credential, so one tenant
// cannot flood out everyone else's. A credential's confirmations are
// dropped as soon as one arrives under a new Identity (the credential
// was updated: new secret, endpoint, username, ...).
type Confirmations struct {
	mu      sync.Mutex
	max     int
	perCred int
	n       int
	creds   map[string]*credConfirmations
}

type credConfirmations struct {
	identity string
	m        map[confirmRef]Confirmation
}

type confirmRef struct{ repository, reference string }

// ConfirmKey names what was confirmed.
type ConfirmKey struct {
	// Credential is the credential's id.
	Credential string
	// Identity is everything of the credential that decides which upstream
	// answered and how it was logged into (origin, endpoint, username,
	// secret version, last update): a confirmation under another identity
	// is not this credential's any more.
	Identity   string
	Repository string // host/path
	Reference  string // digest or tag
}

// Confirmation is what the upstream answered.
type Confirmation struct {
	// Origin is the upstream (cache origin) that answered; Get checks it.
	Origin    string
	Digest    string
	MediaType string
	Size      int64
	At        time.Time
}

// NewConfirmations returns a set bounded to maxKeys keys in all and perCred
// keys per credential (<= 0: defaults 100000 and a tenth of maxKeys).
func NewConfirmations(maxKeys, perCred int) *Confirmations {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	if perCred <= 0 {
		perCred = maxKeys / 10
	}
	return &Confirmations{max: maxKeys, perCred: max(1, min(perCred, maxKeys)), creds: map[string]*credConfirmations{}}
}

// Get returns the confirmation for k, answered by origin, if it is
// younger than maxAge.
func (c *Confirmations) Get(k ConfirmKey, origin string, now time.Time, maxAge time.Duration) (Confirmation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.creds[k.Credential]
	if !ok || cc.identity != k.Identity {
		return Confirmation{}, false
	}
	v, ok := cc.m[confirmRef{k.Repository, k.Reference}]
	if !ok || v.Origin != origin || now.Sub(v.At) > maxAge || now.Before(v.At.Add(-time.Minute)) {
		return Confirmation{}, false
	}
	return v, true
}

// Put records a confirmation. One under a new identity of its credential
// drops the credential's older ones.
func (c *Confirmations) Put(k ConfirmKey, v Confirmation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.creds[k.Credential]
	if ok && cc.identity != k.Identity {
		c.n -= len(cc.m)
		ok = false
	}
	if !ok {
		cc = &credConfirmations{identity: k.Identity, m: map[confirmRef]Confirmation{}}
		c.creds[k.Credential] = cc
	}
	ref := confirmRef{k.Repository, k.Reference}
	if _, ok := cc.m[ref]; !ok {
		if len(cc.m) >= c.perCred {
			c.n -= dropOlderHalf(cc.m)
		}
		if c.n >= c.max {
			for id, o := range c.creds {
				c.n -= dropOlderHalf(o.m)
				if len(o.m) == 0 && o != cc {
					delete(c.creds, id)
				}
			}
		}
		c.n++
	}
	cc.m[ref] = v
}

// dropOlderHalf drops the older half (by time range) of m and returns how
// many went. Bounded memory matters more than saving a HEAD.
func dropOlderHalf(m map[confirmRef]Confirmation) int {
	var oldest, newest time.Time
	for _, e := range m {
		if oldest.IsZero() || e.At.Before(oldest) {
			oldest = e.At
		}
		if e.At.After(newest) {
			newest = e.At
		}
	}
	mid := oldest.Add(newest.Sub(oldest) / 2)
	n := 0
	for key, e := range m {
		if !e.At.After(mid) {
			delete(m, key)
			n++
		}
	}
	return n
}

// Forget drops a credential's confirmation for a repository and
// reference: the upstream now refuses it.
func (c *Confirmations) Forget(k ConfirmKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.creds[k.Credential]
	if !ok || cc.identity != k.Identity {
		return
	}
	ref := confirmRef{k.Repository, k.Reference}
	if _, ok := cc.m[ref]; ok {
		delete(cc.m, ref)
		c.n--
	}
}
