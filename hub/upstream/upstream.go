// Package upstream opens authenticated connections to upstream registries
// for the proxy. Authentication is go-containerregistry's transport (ping,
// Basic, Bearer token exchange); this package adds what a multi-tenant
// proxy needs on top: a stricter realm policy (a token realm must belong to
// the upstream's own domain, see CVE-2026-33540), a guard that keeps every
// request of a connection on the upstream and its realm host, and a cache of
// upstream tokens per credential version and repository until they expire.
package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/sync/singleflight"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// challengeTTL is how long a registry's /v2/ challenge is reused.
const challengeTTL = 10 * time.Minute

// basicTTL is how long a connection to a Basic-auth (or open) registry is
// reused; the credential version in the cache key already covers updates.
const basicTTL = 10 * time.Minute

// defaultTokenTTL is the token lifetime the distribution spec says to assume
// when the token server gives none.
const defaultTokenTTL = 60 * time.Second

// Conn is an authenticated way to reach one repository on one upstream.
type Conn struct {
	// Transport adds upstream auth to requests for the upstream host only.
	Transport http.RoundTripper
	// Base is where API requests go: "https://ghcr.io" or "http://127.0.0.1:5000".
	Base string
	// Addr is the upstream's host[:port].
	Addr string
}

// Target names what to connect to.
type Target struct {
	Credential store.Credential
	Repo       imageref.Repo
	// Auth is called only when no cached connection exists, so the secret
	// is decrypted only then.
	Auth func(ctx context.Context) (authn.Authenticator, error)
}

// key names a cached connection: everything of the credential that changes
// how the upstream is reached or logged into (a new secret is a new
// version), and the repository its token is scoped to.
func (t Target) key() string {
	c := t.Credential
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%t\x00%s", c.ID, c.Version, c.Username, c.Endpoint, c.Insecure, t.Repo.Path)
}

// Pool caches upstream connections. It is safe for concurrent use.
type Pool struct {
	base http.RoundTripper
	now  func() time.Time

	group singleflight.Group
	mu    sync.Mutex
	chal  map[string]challengeEntry
	conns map[string]connEntry
}

type challengeEntry struct {
	ch      *transport.Challenge
	expires time.Time
}

type connEntry struct {
	conn    *Conn
	expires time.Time
}

// Option configures a Pool.
type Option func(*Pool)

// WithTransport sets the base transport (tests, tuning).
func WithTransport(rt http.RoundTripper) Option { return func(p *Pool) { p.base = rt } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(p *Pool) { p.now = now } }

// NewPool returns a Pool with a transport tuned for streaming large blobs.
func NewPool(opts ...Option) *Pool {
	p := &Pool{base: NewTransport(), now: time.Now, chal: map[string]challengeEntry{}, conns: map[string]connEntry{}}
	for _, o := range opts {
		o(p)
	}
	return p
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

// Registry returns the go-containerregistry registry for a credential: its
// endpoint when it has one, else the upstream address of its host.
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
// Concurrent callers for the same key share one handshake.
func (p *Pool) Conn(ctx context.Context, t Target) (*Conn, error) {
	key := t.key()
	now := p.now()
	p.mu.Lock()
	e, ok := p.conns[key]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.conn, nil
	}
	v, err, _ := p.group.Do(key, func() (any, error) {
		conn, ttl, err := p.dial(ctx, t)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.conns[key] = connEntry{conn: conn, expires: p.now().Add(ttl)}
		p.mu.Unlock()
		return conn, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Conn), nil
}

// Forget drops the cached connection of t (after the upstream refused it).
func (p *Pool) Forget(t Target) {
	key := t.key()
	p.mu.Lock()
	delete(p.conns, key)
	p.mu.Unlock()
}

func (p *Pool) dial(ctx context.Context, t Target) (*Conn, time.Duration, error) {
	reg, err := Registry(t.Credential)
	if err != nil {
		return nil, 0, err
	}
	ch, err := p.challenge(ctx, reg)
	if err != nil {
		return nil, 0, err
	}
	auth, err := t.Auth(ctx)
	if err != nil {
		return nil, 0, err
	}
	conn := &Conn{Addr: reg.RegistryStr(), Base: scheme(ch) + "://" + reg.RegistryStr()}
	if !strings.EqualFold(ch.Scheme, "bearer") {
		// Basic or no auth: ggcr's basic transport adds the credential to
		// requests for the registry host only.
		rt, err := transport.FromToken(reg, auth, guard(p.base, reg.RegistryStr(), ""), ch, nil)
		if err != nil {
			return nil, 0, err
		}
		conn.Transport = rt
		return conn, basicTTL, nil
	}
	realm, err := CheckRealm(ch.Parameters["realm"], reg.RegistryStr(), ch.Insecure)
	if err != nil {
		return nil, 0, err
	}
	base := guard(p.base, reg.RegistryStr(), realm.Host)
	var scopes []string
	if t.Repo.Path != "" {
		scopes = []string{t.Repo.Scope()}
	}
	tok, err := transport.Exchange(ctx, reg, auth, base, scopes, ch)
	if err != nil {
		return nil, 0, fmt.Errorf("token exchange with %s: %w", realm.Host, err)
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

func (p *Pool) challenge(ctx context.Context, reg name.Registry) (*transport.Challenge, error) {
	key := reg.RegistryStr() + "\x00" + reg.Scheme()
	now := p.now()
	p.mu.Lock()
	e, ok := p.chal[key]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.ch, nil
	}
	v, err, _ := p.group.Do("ping\x00"+key, func() (any, error) {
		ch, err := transport.Ping(ctx, reg, guard(p.base, reg.RegistryStr(), ""))
		if err != nil {
			return nil, fmt.Errorf("ping %s: %w", reg.RegistryStr(), err)
		}
		p.mu.Lock()
		p.chal[key] = challengeEntry{ch: ch, expires: p.now().Add(challengeTTL)}
		p.mu.Unlock()
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*transport.Challenge), nil
}

// ErrForeignRealm means an upstream asked for its token to be fetched from
// a host outside its own domain. Credentials are never sent there.
var ErrForeignRealm = errors.New("token realm is not the upstream's own")

// CheckRealm accepts a token realm only on the upstream's own host or
// registrable domain (auth.docker.io for registry-1.docker.io, gitlab.com
// for registry.gitlab.com), over HTTPS unless the upstream itself is plain
// HTTP. IP-literal and single-label upstreams must use the same host.
func CheckRealm(realm, registryAddr string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: realm %q is not an absolute URL", ErrForeignRealm, realm)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure {
			return nil, fmt.Errorf("%w: realm %q is plain HTTP for an HTTPS upstream", ErrForeignRealm, realm)
		}
	default:
		return nil, fmt.Errorf("%w: realm scheme %q", ErrForeignRealm, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: realm %q carries user info", ErrForeignRealm, u.Redacted())
	}
	regHost := hostname(registryAddr)
	realmHost := u.Hostname()
	if strings.EqualFold(realmHost, regHost) {
		return u, nil
	}
	if net.ParseIP(regHost) == nil && net.ParseIP(realmHost) == nil {
		a, errA := publicsuffix.EffectiveTLDPlusOne(strings.ToLower(regHost))
		b, errB := publicsuffix.EffectiveTLDPlusOne(strings.ToLower(realmHost))
		if errA == nil && errB == nil && a == b && !sharedDomains[a] {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w: upstream %s sent realm host %s", ErrForeignRealm, registryAddr, u.Host)
}

// sharedDomains hand out subdomains to different customers but are missing
// from the public suffix list: there the realm must be the exact host.
var sharedDomains = map[string]bool{
	"azurecr.io": true, "azurecr.cn": true, "azurecr.us": true, "amazonaws.com": true, "amazonaws.com.cn": true,
}

func hostname(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// guardTransport refuses any request to a host other than the upstream and
// its checked realm: a redirect or challenge cannot steer a credentialed
// request anywhere else.
type guardTransport struct {
	inner   http.RoundTripper
	allowed []string // host:port, default ports made explicit per scheme
	hosts   []string // as given
}

func guard(inner http.RoundTripper, hosts ...string) http.RoundTripper {
	g := &guardTransport{inner: inner}
	for _, h := range hosts {
		if h != "" {
			g.hosts = append(g.hosts, strings.ToLower(h))
		}
	}
	return g
}

// ErrHostNotAllowed is returned for a request the guard refused.
var ErrHostNotAllowed = errors.New("host is neither the upstream nor its token realm")

func (g *guardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	got := withPort(strings.ToLower(r.URL.Host), r.URL.Scheme)
	for _, h := range g.hosts {
		if got == withPort(h, r.URL.Scheme) {
			return g.inner.RoundTrip(r)
		}
	}
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, fmt.Errorf("%s: %w", r.URL.Host, ErrHostNotAllowed)
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
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return 0
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return 0
	}
	return int(min(max(time.Unix(exp, 0).Sub(now), 0), time.Hour) / time.Second)
}
