package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"
)

// Cache defaults.
const (
	// DefaultConfirmTTL is how long an upstream's confirmation that a
	// credential can read a digest in a repository is trusted before the
	// next HEAD.
	DefaultConfirmTTL = 5 * time.Minute
	// DefaultStaleWindow is how long after its last confirmation a cached
	// manifest or blob is still served while the upstream is down.
	DefaultStaleWindow = 24 * time.Hour
)

// Audit values of AuditEvent.Cache.
const (
	cacheHit   = "hit"
	cacheMiss  = "miss"
	cacheStale = "stale"
)

// CacheConfig turns on the pull-through cache.
type CacheConfig struct {
	Cache *cache.Cache
	// ConfirmTTL: how long a digest confirmation is trusted (0: default).
	ConfirmTTL time.Duration
	// TagTTL: how long a tag's digest is used without a HEAD (0: every
	// request for a tag revalidates). At most ConfirmTTL: a tag's
	// confirmation confirms its digest too.
	TagTTL time.Duration
	// StaleWindow: serve-stale window after the last confirmation; 0
	// turns serve-stale off.
	StaleWindow time.Duration
}

// WithCache serves blobs and manifests through c.
func WithCache(c CacheConfig) Option {
	return func(p *Proxy) {
		if c.ConfirmTTL <= 0 {
			c.ConfirmTTL = DefaultConfirmTTL
		}
		c.TagTTL = min(c.TagTTL, c.ConfirmTTL)
		p.cache = &c
		p.confirms = cache.NewConfirmations(0, 0)
	}
}

// manifestAccept is what the hub accepts when it fetches a manifest by
// digest for the cache: the digest fixes the content, the list only has
// to let the upstream send it.
var manifestAccept = []string{
	"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws", "application/vnd.docker.distribution.manifest.v1+json",
	"application/json",
}

// cacheable reports whether the cache path may answer r.
func (p *Proxy) cacheable(r *http.Request, rt route) bool {
	return p.cache != nil && (rt.kind == kindBlobs || rt.kind == kindManifests) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// serveCached answers a blob or manifest request from the cache when it
// can. It returns false, having written nothing, when the request should
// take the uncached path (a HEAD or Range request for something not
// cached, a manifest the client would not accept).
//
// Tenant safety: the install is authorised and its credential picked
// before this runs (ServeHTTP, access). A cached entry is then served only
// under a confirmation for this credential, repository and digest: the
// upstream answered a HEAD or the GET that filled the entry with this
// credential. Without one (or a fresh one) the upstream is asked first,
// and its refusal is the client's answer.
func (p *Proxy) serveCached(w *countingWriter, r *http.Request, claims token.Claims, rt route, inst store.Install, cred store.Credential, target upstream.Target) (bool, *apiError) {
	ctx := r.Context()
	origin, ok := cacheOrigin(cred)
	if !ok {
		return false, nil // no upstream to cache under: stream uncached
	}
	if isDigest(rt.ref) && !cache.Verifiable(rt.ref) {
		return false, nil // a digest the cache cannot verify (sha512): uncached
	}
	ck := confirmKeys(cred, origin, rt.repo.String())
	now := p.now()
	cc := p.cache
	key := func(d string) cache.Key { return cache.Key{Origin: origin, Digest: d} }
	stale := false
	digest := rt.ref
	var conf cache.Confirmation
	confirmed := false

	if rt.kind == kindManifests && !isDigest(rt.ref) {
		tk := ck("tag:" + rt.ref)
		c, ok := p.confirms.Get(tk, origin, now, cc.TagTTL)
		if !ok || cc.TagTTL <= 0 || !cc.Cache.Has(key(c.Digest)) || !accepts(r, c.MediaType) {
			h, aerr, down := p.headUpstream(r, rt, inst, cred, target, rt.ref, r.Header.Values("Accept"))
			switch {
			case down && cc.StaleWindow > 0:
				c, ok = p.confirms.Get(tk, origin, now, cc.StaleWindow)
				if !ok || !cc.Cache.Has(key(c.Digest)) || !accepts(r, c.MediaType) {
					return true, aerr
				}
				stale = true
			case aerr != nil:
				p.confirms.Forget(tk)
				return true, aerr
			default:
				c = confirmationOf(h, origin, now)
				if !cache.Verifiable(c.Digest) {
					return false, nil // no digest to cache under
				}
				p.confirms.Put(tk, c)
				p.confirms.Put(ck(c.Digest), c)
			}
		}
		digest, conf, confirmed = c.Digest, c, true
	}

	dk := ck(digest)
	if !confirmed {
		conf, confirmed = p.confirms.Get(dk, origin, now, cc.ConfirmTTL)
	}
	// confirm asks the upstream with this credential whether the repository
	// has digest; when it is down, an older confirmation serves stale.
	confirm := func() *apiError {
		h, aerr, down := p.headUpstream(r, rt, inst, cred, target, digest, manifestAccept)
		switch {
		case down && cc.StaleWindow > 0:
			c, ok := p.confirms.Get(dk, origin, now, cc.StaleWindow)
			if !ok {
				return aerr
			}
			conf, confirmed, stale = c, true, true
			return nil
		case aerr != nil:
			p.confirms.Forget(dk)
			return aerr
		}
		conf, confirmed = confirmationOf(h, origin, now), true
		conf.Digest = digest
		p.confirms.Put(dk, conf)
		return nil
	}
	if !confirmed && cc.Cache.Has(key(digest)) {
		if aerr := confirm(); aerr != nil {
			return true, aerr
		}
	}

	rd, ok, err := cc.Cache.Lookup(ctx, key(digest))
	if err != nil {
		// The storage failed (an object store gone away): the upstream
		// answers, uncached; the storage logs when it goes and comes back.
		p.cacheFallback("cache lookup failed; streaming from the upstream", digest, err)
		return false, nil
	}
	if ok && !confirmed {
		// Filled by someone else since Has: confirm before reading.
		rd.Close()
		if aerr := confirm(); aerr != nil {
			return true, aerr
		}
		if rd, ok, err = cc.Cache.Lookup(ctx, key(digest)); err != nil {
			return false, nil
		}
	}
	if ok && !rd.Hit() {
		// A fill in progress (this credential confirmed): read along,
		// unless it is a HEAD or Range request, or its fetch failed (it
		// may be another tenant's, with a wrong password): then this
		// request fills with its own credential.
		if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
			rd.Close()
			return false, nil
		}
		if err := rd.Ready(); err != nil {
			rd.Close()
			if ctx.Err() != nil {
				return true, &apiError{status: 499, code: "UNAVAILABLE", message: "client went away"}
			}
			ok = false
		}
	}
	recheck := p.recheckFunc(claims, rt)
	if ok {
		defer rd.Close()
		if rt.kind == kindManifests && !accepts(r, mediaTypeOf(conf, rd.Info())) {
			return false, nil
		}
		w.cache = cacheHit
		if stale {
			w.cache = cacheStale
		}
		cc.Cache.CountHit()
		if rd.Hit() {
			return true, p.serveEntry(w, r, rt, rd, conf, recheck)
		}
		return true, p.serveFill(w, r, rt, rd, conf, recheck)
	}
	if stale {
		// Confirmed from memory only, and the entry is gone.
		return true, &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_down",
			message: "upstream " + rt.repo.Host + " unavailable and " + rt.auditKind() + " not cached"}
	}
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		return false, nil
	}

	// A miss: fill with this credential's GET. Its 200 gives this
	// request's headers; it becomes this credential's confirmation only
	// once the fill's bytes were verified and committed (a 200 of bytes
	// that do not match proves nothing).
	var started bool
	for attempt := 1; ; attempt++ {
		fetch := p.fillFetch(rt, digest, inst, cred, target, origin,
			func(c cache.Confirmation) { conf = c },
			func(c cache.Confirmation) { p.confirms.Put(dk, c) })
		rd, started, err = cc.Cache.Fill(ctx, key(digest), fetch)
		var fe fillError
		switch {
		case errors.As(err, &fe):
			return true, fe.aerr
		case err != nil:
			p.cacheFallback("cache fill failed; streaming from the upstream", digest, err)
			return false, nil
		}
		if started {
			break
		}
		// Lost a race to another request's fill, or the entry appeared
		// (committed here, or by another replica in a shared store):
		// confirm, as for a hit.
		if !confirmed {
			if aerr := confirm(); aerr != nil {
				rd.Close()
				return true, aerr
			}
		}
		if rd.Hit() {
			break
		}
		if err := rd.Ready(); err == nil || attempt >= maxFillAttempts || ctx.Err() != nil {
			break
		}
		// That fill failed at its fetch: try with this request's own.
		rd.Close()
	}
	defer rd.Close()
	if !started {
		w.cache = cacheHit
		if stale {
			w.cache = cacheStale
		}
		cc.Cache.CountHit()
	} else {
		w.cache = cacheMiss
		cc.Cache.CountMiss()
	}
	if rd.Hit() {
		return true, p.serveEntry(w, r, rt, rd, conf, recheck)
	}
	return true, p.serveFill(w, r, rt, rd, conf, recheck)
}

// maxFillAttempts bounds how often a request joins another request's fill
// that then fails at its fetch before it gives up.
const maxFillAttempts = 3

// cacheFallback logs and counts a request that the cache could not
// answer because its storage failed, and that goes to the upstream
// instead. An unavailable object store logs once when it goes and once
// when it is back (cache.S3), not at every request.
func (p *Proxy) cacheFallback(msg, digest string, err error) {
	if errors.Is(err, cache.ErrUnavailable) {
		p.log.Debug(msg, "digest", digest, "err", err)
	} else {
		p.log.Warn(msg, "digest", digest, "err", err)
	}
	if p.metrics != nil {
		p.metrics.CacheFallbacks.Inc()
	}
}

// cacheCounted counts a request the cache answered, by kind and result.
func (p *Proxy) cacheCounted(rt route, result string) {
	if p.metrics == nil || result == "" {
		return
	}
	p.metrics.CacheRequests.WithLabelValues(rt.auditKind(), result).Inc()
	if result == cacheStale {
		p.metrics.CacheStaleServes.Inc()
	}
}

// cacheOrigin is the upstream a credential reaches: scheme and
// host:port of its endpoint's registry, or its host's, and whether TLS is
// off. Entries are shared only among credentials of the same origin. A
// tenant can point a credential at an upstream it controls, which would
// confirm any digest; it must not thereby read what another upstream's
// pulls cached, nor can a plain-HTTP endpoint (whatever answers on port
// 80) share the HTTPS registry's entries. ok is false when the upstream
// cannot be determined: such requests are not cached.
func cacheOrigin(cred store.Credential) (origin string, ok bool) {
	reg, err := upstream.Registry(cred)
	if err != nil {
		return "", false
	}
	scheme := upstream.Scheme(cred)
	host := strings.ToLower(reg.RegistryStr())
	if host == "" {
		return "", false
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		port := "443"
		if scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(host, port)
	}
	origin = scheme + "://" + host
	if cred.Insecure {
		origin += "#insecure"
	}
	return origin, true
}

// confirmKeys returns the confirmation keys of one credential, origin and
// repository. The identity is the whole connection (origin, endpoint,
// username, secret version, insecure, realm hosts, see upstream.Identity)
// and the credential's last update: any update of the credential, not
// only a new secret, makes it confirm again.
func confirmKeys(cred store.Credential, origin, repo string) func(ref string) cache.ConfirmKey {
	identity := origin + "\x00" + upstream.Identity(cred) + "\x00" + strconv.FormatInt(cred.UpdatedAt.UnixNano(), 10)
	return func(ref string) cache.ConfirmKey {
		return cache.ConfirmKey{Credential: cred.ID, Identity: identity, Repository: repo, Reference: ref}
	}
}

// fillFetch returns the fetch of a fill: a GET of digest in rt's
// repository with cred. Its 200 is reported to answered (nil: nobody
// asks) at once, and to committed only once the fill's bytes were
// verified and committed.
func (p *Proxy) fillFetch(rt route, digest string, inst store.Install, cred store.Credential, target upstream.Target, origin string,
	answered, committed func(cache.Confirmation)) cache.FetchFunc {
	return func(fctx context.Context) (cache.Upstream, error) {
		conn, err := p.pool.Conn(fctx, target)
		if err != nil {
			return cache.Upstream{}, fillError{p.dialError(fctx, rt, cred, err)}
		}
		req, err := http.NewRequestWithContext(fctx, http.MethodGet, "/", nil)
		if err != nil {
			return cache.Upstream{}, err
		}
		if rt.kind == kindManifests {
			req.Header["Accept"] = manifestAccept
		}
		drt := rt
		drt.ref = digest
		resp, err := p.fetch(req, drt, conn)
		if err != nil {
			p.log.Warn("upstream request failed", "upstream", conn.Addr, "repository", rt.repo.Path, "err", upstream.Describe(err))
			return cache.Upstream{}, fillError{&apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", message: "upstream " + rt.repo.Host + " failed", reason: "transport"}}
		}
		p.recordRateLimit(fctx, resp, rt, inst, cred)
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				p.pool.Forget(target)
			}
			if aerr := upstreamStatus(resp, drt, cred); aerr != nil {
				return cache.Upstream{}, fillError{aerr}
			}
			return cache.Upstream{}, fillError{&apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_status",
				message: "upstream " + rt.repo.Host + " answered " + strconv.Itoa(resp.StatusCode)}}
		}
		c := confirmationOf(resp.Header, origin, p.now())
		c.Digest, c.Size = digest, resp.ContentLength
		if answered != nil {
			answered(c)
		}
		return cache.Upstream{Body: resp.Body, Size: resp.ContentLength, MediaType: c.MediaType,
			Committed: func() { committed(c) }}, nil
	}
}

// fillError carries a client answer out of a fill's fetch.
type fillError struct{ aerr *apiError }

func (e fillError) Error() string { return e.aerr.message }

// headUpstream sends HEAD for ref with the install's credential. down
// reports an upstream that is unreachable, failing (5xx) or rate limiting
// (429): the cases in which serve-stale applies.
func (p *Proxy) headUpstream(r *http.Request, rt route, inst store.Install, cred store.Credential, target upstream.Target, ref string, accept []string) (http.Header, *apiError, bool) {
	ctx := r.Context()
	conn, err := p.pool.Conn(ctx, target)
	if err != nil {
		aerr := p.dialError(ctx, rt, cred, err)
		return nil, aerr, isDown(aerr)
	}
	req := r.Clone(ctx)
	req.Method, req.Header = http.MethodHead, http.Header{}
	if len(accept) > 0 {
		req.Header["Accept"] = accept
	}
	hrt := rt
	hrt.ref = ref
	resp, err := p.fetch(req, hrt, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &apiError{status: 499, code: "UNAVAILABLE", message: "client went away"}, false
		}
		p.log.Warn("upstream request failed", "upstream", conn.Addr, "repository", rt.repo.Path, "err", upstream.Describe(err))
		return nil, &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", message: "upstream " + rt.repo.Host + " failed", reason: "transport"}, true
	}
	resp.Body.Close()
	p.recordRateLimit(ctx, resp, rt, inst, cred)
	if resp.StatusCode == http.StatusUnauthorized {
		p.pool.Forget(target)
	}
	if resp.StatusCode != http.StatusOK {
		aerr := upstreamStatus(resp, hrt, cred)
		if aerr == nil {
			aerr = &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_status",
				message: "upstream " + rt.repo.Host + " answered " + strconv.Itoa(resp.StatusCode)}
		}
		return nil, aerr, isDown(aerr)
	}
	return resp.Header, nil, false
}

func isDown(aerr *apiError) bool {
	switch aerr.reason {
	case "connect", "transport", "rate_limited", "upstream_5xx":
		return true
	}
	return false
}

func confirmationOf(h http.Header, origin string, now time.Time) cache.Confirmation {
	c := cache.Confirmation{Origin: origin, Digest: h.Get("Docker-Content-Digest"), At: now, Size: -1}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil {
		c.MediaType = mt
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
		c.Size = n
	}
	return c
}

// mediaTypeOf prefers what this credential's upstream said over what the
// filler's upstream said: a tenant's own registry must not choose the
// Content-Type another tenant is served.
func mediaTypeOf(c cache.Confirmation, i cache.Info) string {
	if c.MediaType != "" {
		return c.MediaType
	}
	return i.MediaType
}

// accepts reports whether the client's Accept list includes media type
// mt. Clients that send none get only what registries send them by
// default: Docker schema 2 manifests.
func accepts(r *http.Request, mt string) bool {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return mt == "application/vnd.docker.distribution.manifest.v2+json"
	}
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			t, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && (t == mt || t == "*/*") {
				return true
			}
		}
	}
	return false
}

// recheckFunc re-checks a token's live state during a long stream, as
// serve does. A store outage is not a revoke, and a stream goes on through
// a short one; but it must not outlive a revoke it cannot see for long, so
// once live state could not be confirmed for more than two check intervals
// the stream is cut (fail closed, as new requests are refused meanwhile),
// and the client resumes with Range once the store is back.
func (p *Proxy) recheckFunc(claims token.Claims, rt route) func(context.Context) *apiError {
	lastOK := p.now()
	return func(ctx context.Context) *apiError {
		inst, aerr := p.liveState(ctx, claims)
		if aerr == nil {
			_, aerr = p.access(ctx, inst, rt)
		}
		switch {
		case aerr == nil:
			lastOK = p.now()
		case aerr.refusal == "" && p.now().Sub(lastOK) > 2*p.recheckEvery:
			return aerr.because("state_unavailable")
		}
		return aerr
	}
}

func (p *Proxy) setEntryHeaders(w *countingWriter, rt route, conf cache.Confirmation, info cache.Info) {
	h := w.Header()
	if mt := mediaTypeOf(conf, info); mt != "" {
		h.Set("Content-Type", mt)
	}
	h.Set("Docker-Content-Digest", info.Digest)
	entryHeaders(h, rt)
}

// entryHeaders makes the headers of a blob or manifest answer the same
// set whichever path sends it, the cache or the upstream pass-through: a
// tenant must not learn from them whether another tenant's pull cached a
// digest. (Timing still tells; docs/security.md accepts that.)
func entryHeaders(h http.Header, rt route) {
	if rt.kind != kindBlobs && rt.kind != kindManifests {
		return
	}
	if rt.kind == kindBlobs || h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	if d := h.Get("Docker-Content-Digest"); isDigest(d) {
		h.Set("Etag", `"`+d+`"`)
	} else {
		h.Del("Etag")
	}
	h.Set("Accept-Ranges", "bytes")
	h.Del("Last-Modified")
}

// serveEntry serves a committed entry with http.ServeContent (Range,
// If-Range, HEAD, conditional requests). From local storage the body is
// an *os.File, which net/http sends with sendfile: the hub copies no
// bytes. The stream is still cut by a revoke: sendWriter sends in slices
// and re-checks between them.
func (p *Proxy) serveEntry(w *countingWriter, r *http.Request, rt route, rd *cache.Reader, conf cache.Confirmation, recheck func(context.Context) *apiError) *apiError {
	blob := rd.Blob()
	info := blob.Info()
	p.setEntryHeaders(w, rt, conf, info)
	var content io.ReadSeeker = blob
	if f, ok := blob.(interface{ OSFile() *os.File }); ok {
		content = f.OSFile()
	} else if strings.Contains(r.Header.Get("Range"), ",") {
		// Every range of an object store's entry is a GET of its own: a
		// Range of thousands of tiny ranges would send thousands to the
		// store for one request. A server may ignore Range (RFC 9110
		// 14.2); registry clients ask for one range at most.
		r = r.WithContext(r.Context())
		r.Header = r.Header.Clone()
		r.Header.Del("Range")
	}
	sw := &sendWriter{countingWriter: w, p: p, r: r, rt: rt, recheck: recheck}
	http.ServeContent(sw, r, "", time.Time{}, content)
	p.cacheServed(rt, sw.countingWriter.Bytes, true)
	return sw.err
}

// serveFill streams a fill in progress to the client as it grows.
func (p *Proxy) serveFill(w *countingWriter, r *http.Request, rt route, rd *cache.Reader, conf cache.Confirmation, recheck func(context.Context) *apiError) *apiError {
	if err := rd.Ready(); err != nil {
		// Another request's fetch failed. Its error (which names that
		// request's credential) is not this client's to see.
		return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", message: "upstream " + rt.repo.Host + " failed", reason: "transport"}
	}
	info := rd.Info()
	p.setEntryHeaders(w, rt, conf, info)
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: rd}
	if info.Size >= 0 {
		resp.Header.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	}
	n, aerr := p.copyResponse(w, r, rt, resp, recheck)
	p.cacheServed(rt, n, w.cache != cacheMiss)
	return aerr
}

// cacheServed counts bytes sent from the cache; saved when the request
// itself cost no upstream GET.
func (p *Proxy) cacheServed(rt route, n int64, saved bool) {
	if p.metrics == nil || n <= 0 {
		return
	}
	p.metrics.BytesProxied.WithLabelValues(rt.repo.Host, rt.auditKind()).Add(float64(n))
	p.metrics.CacheServedBytes.WithLabelValues(rt.auditKind()).Add(float64(n))
	if saved {
		p.metrics.CacheSavedBytes.WithLabelValues(rt.auditKind()).Add(float64(n))
	}
}

// sendWriter lets http.ServeContent hand the file to the connection
// (sendfile) in slices of recheckBytes, moving the write deadline forward
// and re-checking the token between slices.
type sendWriter struct {
	*countingWriter
	p       *Proxy
	r       *http.Request
	rt      route
	recheck func(context.Context) *apiError
	err     *apiError
}

// ReadFrom is what io.Copy in ServeContent calls, with an
// *io.LimitedReader over the *os.File. Over HTTP/1.x each slice goes to
// the connection's ReadFrom (sendfile); over HTTP/2, which has none, it is
// copied through a pooled buffer. Either way the token is re-checked
// between slices and the write deadline moved.
func (s *sendWriter) ReadFrom(src io.Reader) (int64, error) {
	if !s.Wrote() {
		s.WriteHeader(http.StatusOK)
	}
	lr, isLimited := src.(*io.LimitedReader)
	rf, canSend := s.countingWriter.ResponseWriter.(io.ReaderFrom)
	sendfile := isLimited && canSend
	var buf []byte
	if !sendfile {
		bp := s.p.bufs.Get().(*[]byte)
		defer s.p.bufs.Put(bp)
		buf = *bp
	}
	rc := http.NewResponseController(s.countingWriter)
	var total int64
	for {
		chunk := s.p.recheckBytes
		if isLimited {
			if lr.N <= 0 {
				return total, nil
			}
			chunk = min(lr.N, chunk)
		}
		if err := rc.SetWriteDeadline(time.Now().Add(s.p.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.err = s.p.streamFailed(s.r, s.rt, "set write deadline", err)
			return total, err
		}
		var n int64
		var err error
		if sendfile {
			n, err = rf.ReadFrom(&io.LimitedReader{R: lr.R, N: chunk})
			lr.N -= n
			s.Bytes += n
		} else {
			// countingWriter.Write counts the bytes.
			n, err = io.CopyBuffer(writerOnly{s.countingWriter}, io.LimitReader(src, chunk), buf)
		}
		total += n
		if err != nil {
			s.err = s.p.streamFailed(s.r, s.rt, "write to client", err)
			return total, err
		}
		if n < chunk || (isLimited && lr.N <= 0) {
			return total, nil // the content ended
		}
		if aerr := s.recheck(s.r.Context()); aerr != nil && aerr.refusal != "" {
			s.p.log.Info("stream cut: install token no longer valid", "upstream", s.rt.repo.Host, "repository", s.rt.repo.Path,
				"ref", s.rt.ref, "reason", aerr.refusal, "bytes", total)
			s.p.refused(aerr)
			s.err = aerr
			return total, errors.New("install token no longer valid")
		}
	}
}

// writerOnly hides ReadFrom so io.Copy does not call it again.
type writerOnly struct{ io.Writer }
