// Package proxy is the hub's authenticating pull proxy: the pull side of the
// OCI distribution API, in path-prefix and containerd-mirror form. Clients
// present install tokens; the proxy checks them against live state, picks
// the workspace's credential for the upstream, and streams the upstream's
// answer back without ever letting upstream credentials, challenges or
// redirects reach the client.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// copyBufSize is the streaming buffer: large enough for loopback-speed
// blob copies, pooled so 100 concurrent pulls cost 100 buffers at most.
const copyBufSize = 256 << 10

// Recorder receives one audit event per proxied request.
type Recorder interface{ Record(store.AuditEvent) }

// Proxy serves the pull API. Create it with New.
type Proxy struct {
	store     State
	sealer    *secrets.Sealer
	keys      *token.Keyring
	pool      *upstream.Pool
	creds     *credential.Source
	audit     Recorder
	metrics   *metrics.Hub
	log       *slog.Logger
	publicURL string
	service   string
	now       func() time.Time

	verified  *verifiedCache
	cdnPublic *http.Client // redirect targets of public upstreams: public addresses only
	cdnAny    *http.Client // redirect targets of loopback/private upstreams
	bufs      sync.Pool

	cache    *CacheConfig         // nil: no pull-through cache
	confirms *cache.Confirmations // per credential, repository and digest

	recheckEvery time.Duration
	recheckBytes int64
	writeTimeout time.Duration
	formTimeout  time.Duration

	wsMu    sync.RWMutex
	wsNames map[string]string

	tagSlots     chan struct{} // large tag lists in memory at once (tags.go)
	smallTagList int           // a tag list up to this size takes no slot
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithPublicURL sets the hub URL advertised in auth challenges (default:
// derived from each request's Host).
func WithPublicURL(u string) Option {
	return func(p *Proxy) { p.publicURL = strings.TrimSuffix(u, "/") }
}

// WithMetrics records request, byte, upstream and token metrics.
func WithMetrics(m *metrics.Hub) Option { return func(p *Proxy) { p.metrics = m } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(p *Proxy) { p.log = l } }

// WithPool sets the upstream connection pool.
func WithPool(pool *upstream.Pool) Option { return func(p *Proxy) { p.pool = pool } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(p *Proxy) { p.now = now } }

// WithCredentialSource sets what turns credentials into upstream logins
// (and fetches ECR/ACR tokens); the default is a credential.NewSource().
func WithCredentialSource(s *credential.Source) Option { return func(p *Proxy) { p.creds = s } }

// New returns a proxy over the hub's store, secrets and signing keys.
func New(s State, sealer *secrets.Sealer, keys *token.Keyring, audit Recorder, opts ...Option) *Proxy {
	p := &Proxy{store: s, sealer: sealer, keys: keys, audit: audit, service: "pullgate",
		log: slog.Default(), now: time.Now, wsNames: map[string]string{},
		recheckEvery: DefaultRecheckInterval, recheckBytes: DefaultRecheckBytes, writeTimeout: DefaultWriteTimeout,
		formTimeout: tokenFormTimeout, tagSlots: make(chan struct{}, tagListSlots), smallTagList: defaultSmallTagList}
	for _, o := range opts {
		o(p)
	}
	if p.pool == nil {
		p.pool = upstream.NewPool()
	}
	if p.creds == nil {
		p.creds = credential.NewSource()
	}
	p.verified = newVerifiedCache(10000)
	p.cdnPublic = cdnClient(true)
	p.cdnAny = cdnClient(false)
	p.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return p
}

// Owns reports whether a request is for the proxy: /v2/... or the token
// endpoint. Servers route on this rather than through http.ServeMux, which
// would answer "/v2/a/../b" with a redirect to a cleaned path instead of
// letting the proxy refuse it.
func Owns(r *http.Request) bool {
	return r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == tokenPath
}

// Handler serves every request Owns.
func (p *Proxy) Handler() http.Handler {
	token := http.HandlerFunc(p.serveToken)
	var tokenH http.Handler = token
	if p.metrics != nil {
		tokenH = p.metrics.Instrument("token", token)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inertHeaders(w.Header())
		switch {
		case r.URL.Path == tokenPath:
			tokenH.ServeHTTP(w, r)
		case r.URL.Path == "/v2":
			http.Redirect(w, r, "/v2/", http.StatusMovedPermanently)
		default:
			p.ServeHTTP(w, r)
		}
	})
}

// ServeHTTP serves one pull-API request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	cw := &countingWriter{Recorder: httprec.Recorder{ResponseWriter: w, Status: http.StatusOK}}
	rt, aerr := parseRoute(r)
	label := "proxy_" + rt.kind
	if aerr != nil {
		label = "proxy_invalid"
	}
	defer func() {
		if p.metrics != nil {
			// Fixed label values only: the method is normalised, the route
			// is one of a few constants, the code is the hub's own.
			m := metrics.Method(r.Method)
			p.metrics.Requests.WithLabelValues(label, m, strconv.Itoa(cw.Status)).Inc()
			p.metrics.Latency.WithLabelValues(label, m).Observe(p.now().Sub(start).Seconds())
		}
	}()
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(cw, r, errCode(http.StatusMethodNotAllowed, "UNSUPPORTED", "pullgate is a pull-only proxy: "+truncate(r.Method, 32)+" not allowed"))
		return
	}
	if aerr != nil {
		writeError(cw, r, aerr)
		return
	}
	tok, _ := credentials(r)
	claims, inst, aerr := p.authorize(r.Context(), tok)
	if aerr != nil {
		p.refused(aerr)
		if aerr.challenge {
			scope := ""
			if rt.kind != kindBase {
				scope = "repository:" + rt.name + ":pull"
			}
			p.challenge(cw, r, scope)
		}
		writeError(cw, r, aerr)
		p.auditRefusal(r, start, rt.auditKind(), rt, claims, inst, aerr)
		return
	}
	if rt.kind == kindBase {
		cw.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(cw, "{}")
		return
	}

	ev := store.AuditEvent{
		Time: start.UTC(), Workspace: p.workspaceName(r.Context(), inst.WorkspaceID), Install: inst.Name,
		Cluster: claims.Cluster, Node: claims.Node, ClientAddr: clientAddr(r), Upstream: rt.repo.Host,
		Repository: rt.repo.Path, Reference: rt.ref, Kind: rt.auditKind(), Method: metrics.Method(r.Method),
	}
	cut := false
	if aerr := p.serve(cw, r, claims, rt, inst); aerr != nil {
		switch {
		case aerr.refusal != "" && cw.Wrote():
			// Refused by a re-check in the middle of a stream.
			ev.Reason, cut = "stream_cut:"+aerr.refusal, true
		case aerr.refusal != "":
			ev.Reason = aerr.refusal
			writeError(cw, r, aerr)
		case cw.Wrote():
			// A stream that failed midway (write timeout, upstream gone).
			cut = true
		default:
			writeError(cw, r, aerr)
		}
	}
	ev.Status, ev.Bytes, ev.Duration, ev.Cache = cw.Status, cw.Bytes, p.now().Sub(start), cw.cache
	p.cacheCounted(rt, cw.cache)
	if p.audit != nil {
		p.audit.Record(ev)
	}
	if cut {
		// Abort the connection (or HTTP/2 stream): the client must see a
		// broken response, never a clean end of a short body.
		panic(http.ErrAbortHandler)
	}
}

// serve authorises the repository for the install, then forwards. An error
// with nothing written yet is for the client; after the header it means
// the stream was cut.
func (p *Proxy) serve(w *countingWriter, r *http.Request, claims token.Claims, rt route, inst store.Install) (aerr *apiError) {
	cred, aerr := p.access(r.Context(), inst, rt)
	if aerr != nil {
		return aerr
	}
	if aerr := p.outOfScope(w, r, claims, rt); aerr != nil {
		return aerr
	}
	defer func() {
		// Past access, rt.repo.Host is a configured credential's host:
		// a bounded label.
		if aerr != nil && aerr.refusal == "" && aerr.reason != "" && p.metrics != nil {
			p.metrics.UpstreamErrors.WithLabelValues(rt.repo.Host, aerr.reason).Inc()
		}
	}()
	target := p.targetFor(cred, rt.repo)
	if p.cacheable(r, rt) {
		if done, aerr := p.serveCached(w, r, claims, rt, inst, cred, target); done {
			return aerr
		}
	}
	conn, err := p.pool.Conn(r.Context(), target)
	if err != nil {
		return p.dialError(r.Context(), rt, cred, err)
	}
	resp, err := p.fetch(r, rt, conn)
	if err != nil {
		if r.Context().Err() != nil {
			return &apiError{status: 499, code: "UNAVAILABLE", message: "client went away"}
		}
		// The cause (which may be a token refresh the upstream answered with
		// an echo of the credential) goes to the log, described by the hub;
		// the client learns only that the upstream failed.
		p.log.Warn("upstream request failed", "upstream", conn.Addr, "repository", rt.repo.Path, "err", upstream.Describe(err))
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", message: "upstream " + rt.repo.Host + " failed", reason: "transport"}
	}
	defer resp.Body.Close()
	p.recordRateLimit(r.Context(), resp, rt, inst, cred)
	if aerr := upstreamStatus(resp, rt, cred); aerr != nil {
		if resp.StatusCode == http.StatusUnauthorized {
			p.pool.Forget(target)
		}
		return aerr
	}
	// While streaming, the token's claims are checked again against live
	// state, with the same checks as at the start of the request. Expiry
	// is not re-checked: a layer that takes longer than the token's
	// lifetime is not revoked.
	recheck := p.recheckFunc(claims, rt)
	var n int64
	if rt.kind == kindTags && resp.StatusCode == http.StatusOK {
		n, aerr = p.serveTagList(w, r, rt, resp)
	} else {
		n, aerr = p.copyResponse(w, r, rt, resp, recheck)
	}
	if p.metrics != nil && n > 0 {
		// Only upstream content counts, and rt.repo.Host is here the host
		// of a configured credential, never a client's invention.
		p.metrics.BytesProxied.WithLabelValues(rt.repo.Host, rt.auditKind()).Add(float64(n))
	}
	return aerr
}

// targetFor is the upstream pool's key and login for a credential and
// repository.
func (p *Proxy) targetFor(cred store.Credential, repo imageref.Repo) upstream.Target {
	return upstream.Target{Credential: cred, Repo: repo, Auth: func(ctx context.Context) (authn.Authenticator, error) {
		sealed, err := p.store.CredentialSecret(ctx, cred.ID, cred.Version)
		if err != nil {
			return nil, err
		}
		sec, err := credential.Open(p.sealer, cred, sealed)
		if err != nil {
			return nil, err
		}
		return p.creds.Authenticator(ctx, cred, sec)
	}}
}

// access checks that the install may pull rt's repository and picks the
// credential for it.
func (p *Proxy) access(ctx context.Context, inst store.Install, rt route) (store.Credential, *apiError) {
	if !imageref.Allowed(inst.Repos, rt.repo) {
		return store.Credential{}, errDenied("repository " + rt.repo.String() + " is not in the allow-list of install " + inst.Name).because("not_allowed")
	}
	return p.pickCredential(ctx, inst.WorkspaceID, rt.repo)
}

// pickCredential chooses the workspace credential with the longest prefix
// matching repo. If that one is disabled, the request is refused: a shorter
// prefix is not a fallback the operator asked for.
func (p *Proxy) pickCredential(ctx context.Context, workspaceID string, repo imageref.Repo) (store.Credential, *apiError) {
	creds, err := p.store.CredentialsByWorkspaceID(ctx, workspaceID)
	if err != nil {
		p.log.Error("read credentials", "workspace", workspaceID, "err", err)
		return store.Credential{}, errCode(http.StatusServiceUnavailable, "UNAVAILABLE", "credential state unavailable")
	}
	best, found := credential.Pick(creds, repo)
	if !found {
		return best, errDenied("no registry credential in this workspace covers " + repo.String()).because("no_credential")
	}
	if !best.Enabled {
		return best, errDenied("registry credential " + best.Name + " for " + repo.String() + " is disabled").because("credential_disabled")
	}
	return best, nil
}

// dialError maps a failed ping or token exchange to the client's error by
// kind and status only: no upstream text, address, realm or connection
// error reaches a pull client (an upstream may echo the credential, and
// connection errors map the hub's network). The log gets the hub's own
// description (upstream.Describe), which never holds an upstream body.
func (p *Proxy) dialError(ctx context.Context, rt route, cred store.Credential, err error) *apiError {
	var terr *transport.Error
	var cerr *credential.Error
	switch {
	case ctx.Err() != nil:
		return &apiError{status: 499, code: "UNAVAILABLE", message: "client went away"}
	case errors.As(err, &cerr) && cerr.Expired:
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "credential_expired", message: cerr.Error()}
	case errors.As(err, &cerr):
		// The details (the identity provider's own error) go to the log and
		// to `registry test`, not to pull clients.
		p.log.Warn("obtain upstream token", "upstream", rt.repo.Host, "credential", cred.Name, "err", cerr.Error())
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "credential_token",
			message: "registry credential " + cred.Name + " could not obtain a token for " + rt.repo.Host + "; see the hub log or run `registry test`"}
	case errors.Is(err, upstream.ErrForeignRealm):
		p.log.Warn("refused upstream realm", "upstream", rt.repo.Host, "credential", cred.Name, "err", err)
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "foreign_realm",
			message: "upstream " + rt.repo.Host + " asked for credentials at a realm outside its own domain; refused"}
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return &apiError{status: http.StatusForbidden, code: "DENIED", reason: "credential_refused",
			message: fmt.Sprintf("upstream %s refused registry credential %s (%d) for %s", rt.repo.Host, cred.Name, terr.StatusCode, rt.repo.Path)}
	case errors.As(err, &terr) && terr.StatusCode == http.StatusTooManyRequests:
		return &apiError{status: http.StatusTooManyRequests, code: "TOOMANYREQUESTS", reason: "rate_limited",
			message: "upstream " + rt.repo.Host + " rate-limited the token exchange"}
	case errors.As(err, &terr):
		p.log.Warn("upstream handshake failed", "upstream", rt.repo.Host, "credential", cred.Name, "err", upstream.Describe(err))
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_status",
			message: fmt.Sprintf("upstream %s refused the handshake (%d); see the hub log or run `registry test`", rt.repo.Host, terr.StatusCode)}
	}
	p.log.Warn("connect upstream", "upstream", rt.repo.Host, "credential", cred.Name, "err", upstream.Describe(err))
	return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "connect",
		message: "upstream " + rt.repo.Host + " unreachable; see the hub log or run `registry test`"}
}

// upstreamStatus maps an upstream failure to the client's error. Upstream
// error texts are not passed on: an upstream may echo what it was sent.
func upstreamStatus(resp *http.Response, rt route, cred store.Credential) *apiError {
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusPartialContent || code == http.StatusNotModified:
		return nil
	case code == http.StatusNotFound && rt.kind == kindReferrers:
		return referrersNotFound(resp, rt)
	case code == http.StatusNotFound:
		what := map[string]string{kindManifests: "MANIFEST_UNKNOWN", kindBlobs: "BLOB_UNKNOWN"}[rt.kind]
		if what == "" {
			what = "NAME_UNKNOWN"
		}
		return errCode(http.StatusNotFound, what, fmt.Sprintf("upstream %s has no %s %s", rt.repo.Host, rt.auditKind(), describe(rt)))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &apiError{status: http.StatusForbidden, code: "DENIED", reason: "credential_refused",
			message: fmt.Sprintf("upstream %s denied registry credential %s access to %s (%d): the repository may not exist or the credential lacks pull access", rt.repo.Host, cred.Name, rt.repo.Path, code)}
	case code == http.StatusTooManyRequests:
		e := &apiError{status: http.StatusTooManyRequests, code: "TOOMANYREQUESTS", reason: "rate_limited",
			message: "upstream " + rt.repo.Host + " rate limit reached"}
		if ra := resp.Header.Get("Retry-After"); ra != "" && len(ra) < 64 && !strings.ContainsAny(ra, "\r\n") {
			e.retryAfter = ra
		}
		return e
	case code == http.StatusRequestedRangeNotSatisfiable:
		return errCode(code, "RANGE_INVALID", "requested range not satisfiable")
	case code >= 500:
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_5xx",
			message: fmt.Sprintf("upstream %s failed with %d", rt.repo.Host, code)}
	default:
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_status",
			message: fmt.Sprintf("upstream %s answered %d", rt.repo.Host, code)}
	}
}

func describe(rt route) string {
	if rt.kind == kindTags {
		return "list for " + rt.repo.Path
	}
	return rt.repo.Path + "@" + rt.ref
}

// responseHeaders are passed from upstream to client. Never Location,
// WWW-Authenticate or Set-Cookie.
var responseHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges",
	"Docker-Content-Digest", "Etag", "Last-Modified", "Oci-Filters-Applied"}

// rewriteLink turns an upstream pagination Link into the same form the
// client used, so the next page comes through the hub too.
func rewriteLink(link string, rt route) (string, bool) {
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end < start {
		return "", false
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return "", false
	}
	q := upstreamQuery(u.Query(), rt.kind)
	var path string
	suffix := "/tags/list"
	if rt.kind == kindReferrers {
		suffix = "/referrers/" + rt.ref
	}
	if rt.mirror {
		path = "/v2/" + rt.repo.Path + suffix
		qs := u.Query()
		out := url.Values{}
		for k := range qs {
			if k == "n" || k == "last" || k == "artifactType" {
				out.Set(k, qs.Get(k))
			}
		}
		out.Set("ns", rt.repo.Host)
		q = out.Encode()
	} else {
		path = "/v2/" + rt.repo.Host + "/" + rt.repo.Path + suffix
	}
	if q != "" {
		path += "?" + q
	}
	return "<" + path + ">" + link[end+1:], true
}

// workspaceName resolves a workspace id for the audit trail. Names never
// change, so they are cached.
func (p *Proxy) workspaceName(ctx context.Context, id string) string {
	p.wsMu.RLock()
	n, ok := p.wsNames[id]
	p.wsMu.RUnlock()
	if ok {
		return n
	}
	ws, err := p.store.WorkspaceByID(ctx, id)
	if err != nil {
		return id
	}
	p.wsMu.Lock()
	p.wsNames[id] = ws.Name
	p.wsMu.Unlock()
	return ws.Name
}

func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// countingWriter records status and body bytes for audit and metrics, and
// whether the cache answered.
type countingWriter struct {
	httprec.Recorder
	cache string // hit, miss or stale when the cache answered
}
