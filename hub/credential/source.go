package credential

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/singleflight"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/netguard"
)

// Token refresh policy: a fetched token is handed out until a quarter of
// its life is left (3 hours for ECR's 12), then renewed in the background
// while the old one is still handed out; it is never handed out in its
// last minute. A failed renewal is retried at most once a minute.
const (
	minRefreshMargin = time.Minute
	hardMargin       = time.Minute
	retryFailedAfter = time.Minute
	fetchTimeout     = 30 * time.Second
)

// Source turns stored credentials into upstream authenticators. Kinds that
// need a token exchange of the hub's own (ecr with AWS keys, acr with a
// service principal) fetch short-lived registry tokens, cache them per
// credential id and secret version until well before expiry, and share one
// fetch among concurrent callers. Tokens never leave the Source except as
// the authenticator handed to the upstream transport. A Source is safe for
// concurrent use.
type Source struct {
	hc             *http.Client
	hcPublic       *http.Client // hc, dialling globally reachable addresses only
	ecrEndpoint    string
	stsEndpoint    string
	azureAuthority string
	now            func() time.Time
	onFetch        func(kind string, err error)

	group   singleflight.Group
	mu      sync.Mutex
	cache   map[cacheKey]*issued
	fetches atomic.Int64
}

type cacheKey struct {
	id      string
	version int
}

type issued struct {
	cfg       authn.AuthConfig
	expires   time.Time
	refresh   time.Time
	failedAt  time.Time // last failed background renewal
	renewing  bool
	issuedFor string // credential name, for errors
}

// SourceOption configures a Source.
type SourceOption func(*Source)

// WithHTTPClient sets the client for AWS, Microsoft Entra ID and ACR token
// exchanges (tests, tuning). Redirects are never followed.
func WithHTTPClient(hc *http.Client) SourceOption { return func(s *Source) { s.hc = hc } }

// WithECREndpoint sends ECR API calls to u instead of the region's
// endpoint (tests, VPC endpoints).
func WithECREndpoint(u string) SourceOption { return func(s *Source) { s.ecrEndpoint = u } }

// WithSTSEndpoint sends STS AssumeRole calls to u (tests, VPC endpoints).
func WithSTSEndpoint(u string) SourceOption { return func(s *Source) { s.stsEndpoint = u } }

// WithAzureAuthority replaces the Entra ID authority
// (https://login.microsoftonline.com and the sovereign clouds' own).
func WithAzureAuthority(u string) SourceOption {
	return func(s *Source) { s.azureAuthority = strings.TrimSuffix(u, "/") }
}

// WithSourceClock replaces time.Now.
func WithSourceClock(now func() time.Time) SourceOption { return func(s *Source) { s.now = now } }

// WithFetchHook is called after every token fetch with the credential kind
// and the fetch's error (nil on success), e.g. for metrics.
func WithFetchHook(f func(kind string, err error)) SourceOption {
	return func(s *Source) { s.onFetch = f }
}

// NewSource returns a Source.
func NewSource(opts ...SourceOption) *Source {
	s := &Source{now: time.Now, cache: map[cacheKey]*issued{}}
	for _, o := range opts {
		o(s)
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if s.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // as for upstreams: no environment proxy sees credentials
		s.hc = &http.Client{Transport: t, Timeout: fetchTimeout}
		pt := t.Clone()
		pt.DialContext = netguard.Dialer(false, nil).DialContext
		s.hcPublic = &http.Client{Transport: pt, Timeout: fetchTimeout, CheckRedirect: noRedirect}
	}
	hc := *s.hc
	hc.CheckRedirect = noRedirect
	s.hc = &hc
	if s.hcPublic == nil {
		s.hcPublic = s.hc // WithHTTPClient: the caller's client decides where it may dial
	}
	return s
}

// Fetches returns how many token fetches the Source has made (tests,
// benchmarks).
func (s *Source) Fetches() int64 { return s.fetches.Load() }

// Dynamic reports whether c with secret sec authenticates with tokens the
// hub fetches itself.
func Dynamic(c store.Credential, sec Secret) bool {
	return (c.Kind == KindECR && sec.AWS != nil) || (c.Kind == KindACR && sec.Azure != nil)
}

// Authenticator returns what the upstream transport presents for c. It is
// the proxy's one call per upstream connection.
func (s *Source) Authenticator(ctx context.Context, c store.Credential, sec Secret) (authn.Authenticator, error) {
	if Dynamic(c, sec) {
		cfg, err := s.token(ctx, c, sec)
		if err != nil {
			return nil, err
		}
		return authn.FromConfig(cfg), nil
	}
	if c.Kind == KindECR && !sec.ExpiresAt.IsZero() && !s.now().Before(sec.ExpiresAt) {
		return nil, &Error{Credential: c.Name, Expired: true, Msg: "the pasted ECR token expired at " + sec.ExpiresAt.UTC().Format(time.RFC3339) +
			"; paste a new one (registry update) or store AWS access keys"}
	}
	cfg, err := staticConfig(c, sec)
	if err != nil {
		return nil, err
	}
	return authn.FromConfig(*cfg), nil
}

// token returns the cached token of c, fetching it when there is none or
// it is about to expire, and renewing it in the background once it is in
// its last quarter of life.
func (s *Source) token(ctx context.Context, c store.Credential, sec Secret) (authn.AuthConfig, error) {
	key := cacheKey{c.ID + "\x00" + c.WorkspaceID + "\x00" + c.Name, c.Version}
	now := s.now()
	s.mu.Lock()
	e := s.cache[key]
	if e != nil && now.Before(e.expires.Add(-hardMargin)) {
		cfg := e.cfg
		if !now.Before(e.refresh) && !e.renewing && now.Sub(e.failedAt) >= retryFailedAfter {
			e.renewing = true
			go s.renew(key, c, sec)
		}
		s.mu.Unlock()
		return cfg, nil
	}
	s.mu.Unlock()
	ch := s.group.DoChan(flightKey(key), func() (any, error) { return s.fetchAndStore(key, c, sec) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return authn.AuthConfig{}, r.Err
		}
		return r.Val.(authn.AuthConfig), nil
	case <-ctx.Done():
		return authn.AuthConfig{}, ctx.Err()
	}
}

func flightKey(k cacheKey) string { return k.id + "\x00" + strconv.Itoa(k.version) }

// renew refreshes a token that is still valid. On failure the old token
// stays in use until its hard expiry.
func (s *Source) renew(key cacheKey, c store.Credential, sec Secret) {
	_, err, _ := s.group.Do(flightKey(key), func() (any, error) { return s.fetchAndStore(key, c, sec) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cache[key]; e != nil {
		e.renewing = false
		if err != nil {
			e.failedAt = s.now()
		}
	}
}

// fetchAndStore fetches a token (detached from any one caller's context:
// it is shared) and caches it.
func (s *Source) fetchAndStore(key cacheKey, c store.Credential, sec Secret) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	s.fetches.Add(1)
	cfg, exp, err := s.fetch(ctx, c, sec)
	if s.onFetch != nil {
		s.onFetch(c.Kind, err)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	life := exp.Sub(now)
	margin := max(life/4, minRefreshMargin)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.cache {
		// Older secret versions of this credential, and anything expired.
		if (k.id == key.id && k.version != key.version) || !now.Before(e.expires) {
			delete(s.cache, k)
		}
	}
	s.cache[key] = &issued{cfg: cfg, expires: exp, refresh: exp.Add(-margin), issuedFor: c.Name}
	return cfg, nil
}

// fetch obtains a fresh token, bypassing the cache.
func (s *Source) fetch(ctx context.Context, c store.Credential, sec Secret) (authn.AuthConfig, time.Time, error) {
	var (
		cfg authn.AuthConfig
		exp time.Time
		err error
	)
	switch c.Kind {
	case KindECR:
		cfg, exp, err = s.fetchECR(ctx, c, sec)
	case KindACR:
		cfg, exp, err = s.fetchACR(ctx, c, sec)
	default:
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "kind " + c.Kind + " has no token exchange"}
	}
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, redactErr(c, sec, err)
	}
	return cfg, exp, nil
}

// redactErr makes err an *Error whose message carries none of sec's
// secret values.
func redactErr(c store.Credential, sec Secret, err error) error {
	e, ok := err.(*Error)
	if !ok {
		e = &Error{Credential: c.Name, Msg: err.Error(), Temporary: true}
	}
	return &Error{Credential: e.Credential, Msg: Redact(e.Msg, sec), Temporary: e.Temporary}
}

// Redact removes sec's secret values, in the forms they travel in, from s.
func Redact(s string, sec Secret) string {
	for _, v := range sec.values() {
		if len(v) < 4 {
			continue
		}
		quoted := strconv.Quote(v) // as inside a JSON or Go string literal
		for _, form := range []string{v, url.QueryEscape(v), base64.StdEncoding.EncodeToString([]byte(v)), quoted[1 : len(quoted)-1]} {
			if len(form) >= 4 {
				s = strings.ReplaceAll(s, form, "REDACTED")
			}
		}
	}
	return s
}
