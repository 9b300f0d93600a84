// Package upstream opens authenticated connections to upstream registries
// for the proxy. Authentication is go-containerregistry's transport (ping,
// Basic, Bearer token exchange); this package adds what a multi-tenant
// proxy needs on top: a stricter realm policy (a token realm must be the
// upstream's own host, a known token host of it, or one the operator named;
// see CVE-2026-33540), a dialer that refuses loopback, private and other
// special-purpose addresses unless the operator allowed them, HTTPS unless
// the credential says otherwise, a guard that keeps every
// request of a connection on the upstream and its realm host, and a cache of
// upstream tokens per credential version and repository until they expire.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pullgate/pullgate/internal/jwtexp"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/netguard"
)

// challengeTTL is how long a registry's /v2/ challenge is reused.
const challengeTTL = 10 * time.Minute

// basicTTL is how long a connection to a Basic-auth (or open) registry is
// reused; the credential version in the cache key already covers updates.
const basicTTL = 10 * time.Minute

// defaultTokenTTL is the token lifetime the distribution spec says to assume
// when the token server gives none.
const defaultTokenTTL = 60 * time.Second

// dialTimeout bounds one shared handshake (ping, token exchange). It runs
// detached from the request that started it, so that one client hanging up
// does not fail everyone waiting on the same handshake.
const dialTimeout = 60 * time.Second

// DefaultMaxConns caps the cached connections (one per credential version
// and repository).
const DefaultMaxConns = 4096

// sweepEvery is how often the caches drop expired entries.
const sweepEvery = time.Minute

// maxHandshakesPerCredential bounds the concurrent handshakes (token
// exchanges) of one credential: a client asking for many repositories at
// once cannot turn the hub into a burst of logins against the tenant's
// upstream account. Credentials share dialStripes slots by hash, so the
// bound needs no per-credential state.
const (
	maxHandshakesPerCredential = 4
	dialStripes                = 64
)

// Conn is an authenticated way to reach one repository on one upstream.
type Conn struct {
	// Transport adds upstream auth to requests for the upstream host only.
	Transport http.RoundTripper
	// Base is where API requests go: "https://ghcr.io" or "http://127.0.0.1:5000".
	Base string
	// Addr is the upstream's host[:port].
	Addr string
	// Private: the operator allowed this upstream special-purpose addresses
	// (loopback, private, ...); redirects from it may go there too.
	Private bool
}

// Target names what to connect to.
type Target struct {
	Credential store.Credential
	Repo       imageref.Repo
	// Auth is called only when no cached connection exists, so the secret
	// is decrypted only then.
	Auth func(ctx context.Context) (authn.Authenticator, error)
}

// key names a cached connection: the credential's Identity and the
// repository its token is scoped to.
func (t Target) key() string {
	return Identity(t.Credential) + "\x00" + t.Repo.Path
}

// Identity names everything of a credential that changes how the
// upstream is reached or logged into (a new secret is a new version).
func Identity(c store.Credential) string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%t\x00%t\x00%s", c.ID, c.Version, c.Username, c.Endpoint, c.Insecure,
		c.AllowPrivateNetwork, strings.Join(c.RealmHosts, ","))
}

// Pool caches upstream connections. It is safe for concurrent use.
type Pool struct {
	public  http.RoundTripper // dials globally reachable addresses only
	private http.RoundTripper // for credentials allowed a private network
	now     func() time.Time

	resolver *net.Resolver
	wrap     func(http.RoundTripper) http.RoundTripper
	maxConns int

	group singleflight.Group
	slots [dialStripes]chan struct{}
	mu    sync.Mutex
	chal  *lru[*transport.Challenge]
	conns *lru[*Conn]
}

// Option configures a Pool.
type Option func(*Pool)

// WithWrap wraps both base transports (tests count or observe requests);
// the address check stays underneath.
func WithWrap(w func(http.RoundTripper) http.RoundTripper) Option {
	return func(p *Pool) { p.wrap = w }
}

// WithResolver sets the DNS resolver of upstream dials (tests).
func WithResolver(r *net.Resolver) Option { return func(p *Pool) { p.resolver = r } }

// WithMaxConns caps the cached connections (default DefaultMaxConns).
func WithMaxConns(n int) Option { return func(p *Pool) { p.maxConns = n } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(p *Pool) { p.now = now } }

// NewPool returns a Pool with transports tuned for streaming large blobs.
// Every upstream dial (ping, token exchange, API, same-host redirects)
// goes through a dialer that refuses special-purpose addresses, unless the
// credential has AllowPrivateNetwork.
func NewPool(opts ...Option) *Pool {
	p := &Pool{now: time.Now, maxConns: DefaultMaxConns}
	for _, o := range opts {
		o(p)
	}
	p.public = p.transport(false)
	p.private = p.transport(true)
	for i := range p.slots {
		p.slots[i] = make(chan struct{}, maxHandshakesPerCredential)
	}
	p.chal = newLRU[*transport.Challenge](p.maxConns, sweepEvery)
	p.conns = newLRU[*Conn](p.maxConns, sweepEvery)
	return p
}

func (p *Pool) transport(allowPrivate bool) http.RoundTripper {
	t := GuardedTransport(allowPrivate, p.resolver)
	if p.wrap != nil {
		return p.wrap(t)
	}
	return t
}

// fresh is an empty pool over the same transports (registry test).
func (p *Pool) fresh() *Pool {
	f := &Pool{public: p.public, private: p.private, now: p.now, maxConns: p.maxConns,
		chal: newLRU[*transport.Challenge](p.maxConns, sweepEvery), conns: newLRU[*Conn](p.maxConns, sweepEvery)}
	f.slots = p.slots
	return f
}

// slot is the handshake semaphore of a credential.
func (p *Pool) slot(credID string) chan struct{} {
	h := fnv.New32a()
	h.Write([]byte(credID))
	return p.slots[h.Sum32()%dialStripes]
}

func (p *Pool) base(c store.Credential) http.RoundTripper {
	if c.AllowPrivateNetwork {
		return p.private
	}
	return p.public
}

// Len is the number of cached connections.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns.len()
}

// NewTransport is the base HTTP transport to upstreams: many idle
// connections per host (many concurrent pulls of one upstream) and large
// read/write buffers for blob throughput.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	t.ReadBufferSize = 256 << 10
	t.WriteBufferSize = 64 << 10
	t.ResponseHeaderTimeout = 60 * time.Second
	t.Proxy = nil // the hub talks to upstreams directly; an env proxy would see credentials
	// Bodies pass through byte for byte: no transparent gzip, which would
	// change lengths and cost CPU on the streaming path.
	t.DisableCompression = true
	return t
}

// GuardedTransport is NewTransport dialling through netguard: only
// globally reachable addresses unless allowPrivate (the operator allowed
// the credential a private network). resolver may be nil.
func GuardedTransport(allowPrivate bool, resolver *net.Resolver) *http.Transport {
	t := NewTransport()
	t.DialContext = netguard.Dialer(allowPrivate, resolver).DialContext
	return t
}

// PlainHTTP reports whether the credential allows plain HTTP: only with an
// explicit http:// endpoint or insecure set, never by guessing from the
// address (go-containerregistry treats private and loopback hosts as HTTP).
func PlainHTTP(c store.Credential) bool {
	return c.Insecure || strings.HasPrefix(strings.ToLower(c.Endpoint), "http://")
}

// Scheme is the scheme the hub uses for the credential's upstream.
func Scheme(c store.Credential) string {
	if PlainHTTP(c) {
		return "http"
	}
	return "https"
}

// Registry returns the go-containerregistry registry for a credential: its
// endpoint when it has one, else the upstream address of its host. Its
// Scheme() may still guess "http" for private hosts: the transports of
// this package refuse plain HTTP unless PlainHTTP(c).
func Registry(c store.Credential) (name.Registry, error) {
	var opts []name.Option
	if c.Insecure {
		opts = append(opts, name.Insecure)
	}
	if c.Endpoint != "" {
		u, err := ParseEndpoint(c.Endpoint)
		if err != nil {
			return name.Registry{}, err
		}
		if u.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		return name.NewRegistry(u.Host, opts...)
	}
	p, err := imageref.ParsePrefix(c.Host)
	if err != nil {
		return name.Registry{}, err
	}
	return name.NewRegistry(imageref.UpstreamAddr(p.Host), opts...)
}

// ParseEndpoint validates a credential endpoint: an http(s) URL with a host
// and nothing else (no path, query or user info).
func ParseEndpoint(s string) (*url.URL, error) {
	if strings.Contains(s, "@") {
		return nil, fmt.Errorf("endpoint must not contain user info ('@')")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host[:port] with no path, query or user info", s)
	}
	if _, err := name.NewRegistry(u.Host, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", s, err)
	}
	u.Path = ""
	return u, nil
}

// Conn returns a connection for t, from cache when one is still valid.
// Concurrent callers for the same key share one handshake, which runs on
// its own context: a caller that gives up gets ctx's error, the others
// still get the connection.
func (p *Pool) Conn(ctx context.Context, t Target) (*Conn, error) {
	key := t.key()
	p.mu.Lock()
	c, ok := p.conns.get(key, p.now())
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	ch := p.group.DoChan(key, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
		defer cancel()
		slot := p.slot(t.Credential.ID)
		select {
		case slot <- struct{}{}:
			defer func() { <-slot }()
		case <-dctx.Done():
			return nil, dctx.Err()
		}
		conn, ttl, err := p.dial(dctx, t)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		now := p.now()
		p.conns.put(key, conn, now.Add(ttl), now)
		p.mu.Unlock()
		return conn, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Conn), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Forget drops the cached connection of t (after the upstream refused it).
func (p *Pool) Forget(t Target) {
	key := t.key()
	p.mu.Lock()
	p.conns.remove(key)
	p.mu.Unlock()
}

func (p *Pool) dial(ctx context.Context, t Target) (*Conn, time.Duration, error) {
	c := t.Credential
	reg, err := Registry(c)
	if err != nil {
		return nil, 0, err
	}
	plain := PlainHTTP(c)
	ch, err := p.challenge(ctx, reg, c)
	if err != nil {
		return nil, 0, err
	}
	auth, err := t.Auth(ctx)
	if err != nil {
		return nil, 0, err
	}
	conn := &Conn{Addr: reg.RegistryStr(), Base: scheme(ch) + "://" + reg.RegistryStr(), Private: c.AllowPrivateNetwork}
	if !strings.EqualFold(ch.Scheme, "bearer") {
		// Basic or no auth: ggcr's basic transport adds the credential to
		// requests for the registry host only.
		rt, err := transport.FromToken(reg, auth, guard(p.base(c), plain, reg.RegistryStr(), ""), ch, nil)
		if err != nil {
			return nil, 0, err
		}
		conn.Transport = rt
		return conn, basicTTL, nil
	}
	realm, err := CheckRealm(ch.Parameters["realm"], reg.RegistryStr(), plain, c.RealmHosts)
	if err != nil {
		return nil, 0, err
	}
	base := guard(p.base(c), plain, reg.RegistryStr(), realm.Host)
	var scopes []string
	if t.Repo.Path != "" {
		scopes = []string{t.Repo.Scope()}
	}
	tok, err := transport.Exchange(ctx, reg, auth, base, scopes, ch)
	if err != nil {
		return nil, 0, handshakeError(ctx, "token exchange with", realm.Host, err, auth)
	}
	if tok.Token == "" {
		// OAuth2 token servers (ACR) answer access_token only; FromToken
		// reads Token, and without it every first request would 401.
		tok.Token = tok.AccessToken
	}
	if tok.ExpiresIn <= 0 {
		tok.ExpiresIn = jwtLifetime(tok.Token, p.now())
	}
	rt, err := transport.FromToken(reg, auth, base, ch, tok)
	if err != nil {
		return nil, 0, err
	}
	conn.Transport = rt
	ttl := time.Duration(tok.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	// Renew ahead of expiry so a request never leaves with a dying token.
	return conn, ttl - min(ttl/5, 30*time.Second), nil
}

func scheme(ch *transport.Challenge) string {
	if ch.Insecure {
		return "http"
	}
	return "https"
}

// challenge pings the registry (shared and cached per address and network
// policy), on its own context like Conn.
func (p *Pool) challenge(ctx context.Context, reg name.Registry, c store.Credential) (*transport.Challenge, error) {
	key := fmt.Sprintf("%s\x00%t\x00%t", reg.RegistryStr(), PlainHTTP(c), c.AllowPrivateNetwork)
	p.mu.Lock()
	e, ok := p.chal.get(key, p.now())
	p.mu.Unlock()
	if ok {
		return e, nil
	}
	res := p.group.DoChan("ping\x00"+key, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
		defer cancel()
		ch, err := p.ping(dctx, reg, c)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		now := p.now()
		p.chal.put(key, ch, now.Add(challengeTTL), now)
		p.mu.Unlock()
		return ch, nil
	})
	select {
	case r := <-res:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*transport.Challenge), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ping asks /v2/ for the registry's challenge. Plain HTTP is tried only
// when the credential allows it, and alone for an http:// endpoint; redirects stay on the registry host and
// never downgrade to http.
func (p *Pool) ping(ctx context.Context, reg name.Registry, c store.Credential) (*transport.Challenge, error) {
	rt := guard(p.base(c), PlainHTTP(c), reg.RegistryStr())
	if ExplicitHTTP(c) {
		// ggcr tries https first for an insecure registry; an http://
		// endpoint means HTTP only.
		rt = httpOnly{rt}
	}
	ch, err := transport.Ping(ctx, reg, rt)
	if err != nil {
		var ha *httpAttempt
		if ExplicitHTTP(c) && errors.As(err, &ha) {
			err = ha.asURLError()
		}
		return nil, handshakeError(ctx, "ping", reg.RegistryStr(), err, nil)
	}
	if ch.Insecure && !PlainHTTP(c) {
		return nil, handshakeError(ctx, "ping", reg.RegistryStr(), ErrPlainHTTP, nil)
	}
	return ch, nil
}

// guardTransport refuses any request to a host other than the upstream and
// its checked realm: a redirect or challenge cannot steer a credentialed
// request anywhere else.
type guardTransport struct {
	inner     http.RoundTripper
	plainHTTP bool     // http:// requests allowed
	hosts     []string // as given
}

func guard(inner http.RoundTripper, plainHTTP bool, hosts ...string) http.RoundTripper {
	g := &guardTransport{inner: inner, plainHTTP: plainHTTP}
	for _, h := range hosts {
		if h != "" {
			g.hosts = append(g.hosts, strings.ToLower(h))
		}
	}
	return g
}

// ErrHostNotAllowed is returned for a request the guard refused.
var ErrHostNotAllowed = errors.New("host is neither the upstream nor its token realm")

// ErrPlainHTTP is returned for a plain-HTTP request the credential does
// not allow.
var ErrPlainHTTP = errors.New("plain HTTP refused: the credential has neither an http:// endpoint nor insecure set")

func (g *guardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	err := g.check(r)
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return g.inner.RoundTrip(r)
}

func (g *guardTransport) check(r *http.Request) error {
	got := withPort(strings.ToLower(r.URL.Host), r.URL.Scheme)
	for _, h := range g.hosts {
		if got != withPort(h, r.URL.Scheme) {
			continue
		}
		if r.URL.Scheme != "https" && !(g.plainHTTP && r.URL.Scheme == "http") {
			return fmt.Errorf("%s: %w", r.URL.Host, ErrPlainHTTP)
		}
		return nil
	}
	return fmt.Errorf("%s: %w", r.URL.Host, ErrHostNotAllowed)
}

func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "http" {
		return net.JoinHostPort(strings.Trim(host, "[]"), "80")
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "443")
}

// jwtLifetime reads, without verifying it, the remaining life of a token
// that is a JWT (ACR access tokens carry exp but no expires_in), in
// seconds, at most an hour; 0 when unknown.
func jwtLifetime(tok string, now time.Time) int {
	exp := jwtexp.Unverified(tok)
	if exp.IsZero() {
		return 0
	}
	return int(min(max(exp.Sub(now), 0), time.Hour) / time.Second)
}
