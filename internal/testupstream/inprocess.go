package testupstream

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an upstream registry started by StartInProcess or
// StartDistribution.
type Registry struct {
	// Host is "127.0.0.1:PORT", suitable as the registry part of an image
	// reference.
	Host string
	// URL is "http://127.0.0.1:PORT".
	URL string
	// User and Password are the credentials the registry accepts. Both are
	// empty when it requires no authentication.
	User     string
	Password string
	// CDN is the fake blob CDN that blob downloads are redirected to; nil
	// unless the registry was started WithBlobRedirect.
	CDN *CDN

	auth          *authLayer
	handler       http.Handler
	reqLog        requestLog
	tokenRequests atomic.Int64

	proc     *process // set by StartDistribution only
	htpasswd string   // StartDistribution with auth: its htpasswd file
}

// LoggedRequest is one request as seen by an in-process registry or CDN.
type LoggedRequest struct {
	Method string
	Path   string
	Query  string
	// Authorization reports whether the request carried an Authorization
	// header; AuthScheme is its scheme ("Basic", "Bearer"), if any.
	Authorization bool
	AuthScheme    string
	// AuthHeader is the whole Authorization header, for tests that check
	// which credentials reached the upstream.
	AuthHeader string
	// Status is the HTTP status code of the response.
	Status int
}

// Option configures StartInProcess.
type Option func(*inProcessConfig)

type inProcessConfig struct {
	mode         authMode
	user, pass   string
	realm        string
	ttl          time.Duration
	blobRedirect bool
}

// WithBasicAuth requires HTTP Basic credentials user:pass on every /v2/
// request; anything else gets 401 with a Basic challenge.
func WithBasicAuth(user, pass string) Option {
	return func(c *inProcessConfig) { c.mode, c.user, c.pass = authBasic, user, pass }
}

// WithTokenAuth enables the Docker token flow: /v2/ requests need a Bearer
// token issued by the registry's /token endpoint, which hands them out for
// the Basic credentials user:pass (or the OAuth2 password grant).
func WithTokenAuth(user, pass string) Option {
	return func(c *inProcessConfig) { c.mode, c.user, c.pass = authToken, user, pass }
}

// WithRealm overrides the realm advertised in Bearer challenges, which
// otherwise points at the registry's own /token endpoint. The registry
// keeps serving /token itself; this only changes what clients are told,
// e.g. to simulate an upstream advertising a foreign realm.
func WithRealm(url string) Option {
	return func(c *inProcessConfig) { c.realm = url }
}

// WithTokenTTL sets the lifetime of issued tokens (default five minutes).
func WithTokenTTL(d time.Duration) Option {
	return func(c *inProcessConfig) { c.ttl = d }
}

// WithBlobRedirect makes blob GETs answer 307 to a fake CDN (Registry.CDN)
// that serves the bytes under a short-lived signed URL and refuses any
// request carrying an Authorization header. HEAD requests and uploads are
// still served by the registry.
func WithBlobRedirect() Option {
	return func(c *inProcessConfig) { c.blobRedirect = true }
}

// StartInProcess serves an in-memory go-containerregistry registry over
// plain HTTP on 127.0.0.1, guarded by the auth configured in opts (none by
// default). It is shut down when the test ends.
//
// Blobs are held in memory, uploads included, so large images belong in
// StartDistribution.
func StartInProcess(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	cfg := inProcessConfig{ttl: defaultTokenTTL}
	for _, o := range opts {
		o(&cfg)
	}

	blobs := registry.NewInMemoryBlobHandler()
	r := &Registry{
		handler: registry.New(
			registry.WithBlobHandler(blobs),
			registry.WithReferrersSupport(true), // OCI 1.1, as current registries serve it
			registry.Logger(log.New(io.Discard, "", 0)),
		),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.Host = srv.Listener.Addr().String()
	r.URL = "http://" + r.Host
	if cfg.mode != authNone {
		r.User, r.Password = cfg.user, cfg.pass
	}
	realm := cfg.realm
	if realm == "" {
		realm = r.URL + "/token"
	}
	r.auth = &authLayer{
		mode:     cfg.mode,
		user:     cfg.user,
		password: cfg.pass,
		realm:    realm,
		ttl:      cfg.ttl,
		tokens:   map[string]grant{},
	}
	if cfg.blobRedirect {
		r.CDN = startCDN(t, blobs)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return r
}

// serve is the in-process registry's root handler.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	rec := &httprec.Recorder{ResponseWriter: w, Status: http.StatusOK}
	defer func() { r.reqLog.add(req, rec.Status) }()

	switch {
	case req.URL.Path == "/token":
		r.tokenRequests.Add(1)
		if r.auth.mode != authToken {
			http.NotFound(rec, req)
			return
		}
		r.auth.serveToken(rec, req)
	case req.URL.Path == "/v2" || strings.HasPrefix(req.URL.Path, "/v2/"):
		if !r.auth.authorize(rec, req) {
			return
		}
		if r.CDN != nil && req.Method == http.MethodGet && r.CDN.redirect(rec, req) {
			return
		}
		r.handler.ServeHTTP(rec, req)
	default:
		http.NotFound(rec, req)
	}
}

// Requests returns how many requests the in-process registry has served,
// token endpoint included. It is always 0 for StartDistribution.
func (r *Registry) Requests() int { return r.reqLog.len() }

// TokenRequests returns how many requests hit the token endpoint.
func (r *Registry) TokenRequests() int { return int(r.tokenRequests.Load()) }

// Log returns every request the in-process registry has served, in order
// of completion.
func (r *Registry) Log() []LoggedRequest { return r.reqLog.snapshot() }

// ResetLog clears the request log and counters, e.g. after seeding images,
// so a test can assert only on what followed.
func (r *Registry) ResetLog() {
	r.reqLog.reset()
	r.tokenRequests.Store(0)
}

// RevokeTokens invalidates every token issued so far, as if they expired.
func (r *Registry) RevokeTokens() {
	if r.auth != nil {
		r.auth.revoke()
	}
}

// requestLog is a concurrency-safe list of served requests.
type requestLog struct {
	mu      sync.Mutex
	entries []LoggedRequest
}

func (l *requestLog) add(req *http.Request, status int) {
	authz := req.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(authz, " ")
	e := LoggedRequest{
		Method:        req.Method,
		Path:          req.URL.Path,
		Query:         req.URL.RawQuery,
		Authorization: authz != "",
		AuthScheme:    scheme,
		AuthHeader:    authz,
		Status:        status,
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *requestLog) snapshot() []LoggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoggedRequest(nil), l.entries...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}
