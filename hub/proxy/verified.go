package proxy

import (
	"sync"
	"time"

	"github.com/pullgate/pullgate/hub/token"
)

// verifiedCache remembers tokens whose signature has been verified, so the
// Ed25519 check (about 50 µs) runs once per token rather than once per
// request. It caches only the signature result: live state (install
// enabled, generation) is still read on every request, and an entry is
// never used past the token's expiry.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]token.Claims
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[string]token.Claims, max)}
}

func (c *verifiedCache) get(tok string, now time.Time) (token.Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.entries[tok]
	if !ok {
		return token.Claims{}, false
	}
	if !now.Before(cl.ExpiresAt()) {
		delete(c.entries, tok)
		return token.Claims{}, false
	}
	return cl, true
}

func (c *verifiedCache) put(tok string, cl token.Claims, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Full: drop expired entries, and if that frees nothing, half of
		// the rest (map order is random). Bounded memory matters more than
		// a perfect hit rate.
		for k, v := range c.entries {
			if !now.Before(v.ExpiresAt()) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max/2 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[tok] = cl
}
