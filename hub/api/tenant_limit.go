package api

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tenant self-service routes are public: anyone on the network can call
// them. Each client address gets a small token bucket, and all clients
// together a larger one, so that nobody fills the challenge table or
// makes the hub verify signatures in a loop. Behind a reverse proxy every
// request comes from the proxy's address (the hub believes no forwarded
// header), and the per-client bucket then acts as a second global one.
const (
	tenantPerClientRate  = rate.Limit(1.0 / 3) // one request every 3 s ...
	tenantPerClientBurst = 20                  // ... after a burst of 20
	tenantGlobalRate     = rate.Limit(20)
	tenantGlobalBurst    = 100
	// tenantMaxClients bounds the per-client table; idle entries go first,
	// and a table full of busy clients refuses new ones (an address
	// sweep must not grow it without bound).
	tenantMaxClients = 10000
	tenantClientIdle = 10 * time.Minute
)

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// tenantLimiter holds the per-client and the global bucket.
type tenantLimiter struct {
	mu      sync.Mutex
	global  *rate.Limiter
	clients map[string]*clientBucket
}

func newTenantLimiter() *tenantLimiter {
	return &tenantLimiter{global: rate.NewLimiter(tenantGlobalRate, tenantGlobalBurst), clients: map[string]*clientBucket{}}
}

// allow takes a token for client at now, or answers the 429 to send.
func (l *tenantLimiter) allow(client string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= tenantMaxClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > tenantClientIdle {
					delete(l.clients, k)
				}
			}
		}
		if len(l.clients) >= tenantMaxClients {
			return tooManyRequests("too many clients are logging in to this hub: try again in a few minutes")
		}
		b = &clientBucket{lim: rate.NewLimiter(tenantPerClientRate, tenantPerClientBurst)}
		l.clients[client] = b
	}
	b.seen = now
	if !b.lim.AllowN(now, 1) {
		return tooManyRequests("too many tenant login requests from your address: wait a few seconds and try again")
	}
	if !l.global.AllowN(now, 1) {
		return tooManyRequests("too many tenant login requests on this hub: try again in a few seconds")
	}
	return nil
}

func tooManyRequests(msg string) error { return errorf(http.StatusTooManyRequests, "%s", msg) }
