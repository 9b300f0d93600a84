package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
)

// tokenPath is the hub's registry token endpoint (Docker token auth): the
// realm of the Bearer challenge the proxy sends.
const tokenPath = "/auth/token"

// maxTokenForm bounds an OAuth2 POST to the token endpoint, and
// tokenFormTimeout the time to send it.
const (
	maxTokenForm     = 16 << 10
	tokenFormTimeout = 10 * time.Second
)

// credentials extracts the install token from Basic (password = install
// token, any username) or Bearer authorization.
func credentials(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok), true
	}
	_, pass, ok := r.BasicAuth()
	return pass, ok
}

// authorize checks an install token completely: signature, expiry, and the
// live state of its install. The live state is read from the store on every
// request, so a revoke is effective for the very next request on every hub
// replica sharing the store.
func (p *Proxy) authorize(ctx context.Context, tok string) (token.Claims, store.Install, *apiError) {
	if tok == "" {
		return token.Claims{}, store.Install{}, errUnauthorized("", "authentication required: use an install token as the password (Basic) or fetch a Bearer token from "+tokenPath)
	}
	now := p.now()
	claims, ok := p.verified.get(tok, now)
	var err error
	if !ok {
		claims, err = p.keys.Verify(tok)
		if err == nil {
			p.verified.put(tok, claims, now)
		}
	}
	if err != nil {
		reason := "malformed"
		switch {
		case errors.Is(err, token.ErrExpired):
			reason = "expired"
		case errors.Is(err, token.ErrUnknownKey):
			reason = "unknown_key"
		case errors.Is(err, token.ErrSignature):
			reason = "signature"
		}
		// claims is zero unless the token is authentic but expired.
		return claims, store.Install{}, errUnauthorized(reason, err.Error()).because(reason)
	}
	inst, aerr := p.liveState(ctx, claims)
	return claims, inst, aerr
}

// liveState checks verified claims against the store: the install exists,
// is enabled and unchanged, and a node-issued token's node is enrolled. It
// runs on every request, and again during long streams.
func (p *Proxy) liveState(ctx context.Context, claims token.Claims) (store.Install, *apiError) {
	inst, err := p.store.InstallByID(ctx, claims.Install)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inst, errUnauthorized("revoked", "install token revoked: the install was deleted").because("install_deleted")
	case err != nil:
		p.log.Error("read install state", "install", claims.Install, "err", err)
		return inst, errCode(http.StatusServiceUnavailable, "UNAVAILABLE", "hub database unavailable: the install's live state cannot be checked")
	case inst.WorkspaceID != claims.Workspace:
		return inst, errUnauthorized("revoked", "install token does not match its install").because("install_mismatch")
	case !inst.Enabled:
		return inst, errUnauthorized("revoked", "install token revoked: install "+inst.Name+" is disabled").because("install_disabled")
	case inst.Generation != claims.Generation:
		return inst, errUnauthorized("revoked", "install token revoked: install "+inst.Name+" changed since it was issued").because("install_changed")
	}
	if claims.Lease != "" {
		// Minted for an Akash lease namespace: good only while the lease
		// is there and still its workspace's account's, so deleting the
		// namespace cuts pulls at once, not after the token's lifetime.
		bound, err := p.store.AkashLeaseBound(ctx, claims.Cluster, claims.Lease, claims.Workspace)
		switch {
		case err != nil:
			p.log.Error("read lease state", "lease", claims.Lease, "err", err)
			return inst, errCode(http.StatusServiceUnavailable, "UNAVAILABLE", "hub database unavailable: the lease's live state cannot be checked")
		case !bound:
			return inst, errUnauthorized("revoked", "install token revoked: its Akash lease ended").because("lease_ended")
		}
	}
	if claims.Node != "" {
		// Issued to a node agent: the node must still be enrolled (revoking
		// a node or deleting its cluster removes it).
		n, _, err := p.store.NodeByID(ctx, claims.Node)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && (n.Revoked || n.ClusterID != claims.Cluster)):
			return inst, errUnauthorized("revoked", "install token revoked: its node is revoked or its cluster deleted").because("node_revoked")
		case err != nil:
			p.log.Error("read node state", "node", claims.Node, "err", err)
			return inst, errCode(http.StatusServiceUnavailable, "UNAVAILABLE", "hub database unavailable: the node's live state cannot be checked")
		}
	}
	return inst, nil
}

// tokenResponse is the Docker token auth response. The token handed out is
// the install token itself: it already is short-lived, signed and checked
// against live state on every request.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	// Scope is the granted scope, when scopes were requested (OAuth2:
	// "may be the same scope as requested or a subset").
	Scope string `json:"scope,omitempty"`
}

// serveToken answers GET with Basic auth (docker, containers-image, crane)
// and the OAuth2 password grant POST (containerd).
func (p *Proxy) serveToken(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	var tok string
	switch r.Method {
	case http.MethodGet:
		tok, _ = credentials(r)
	case http.MethodPost:
		// Unauthenticated: the form must arrive promptly, not a byte a
		// minute (the server's header timeout does not cover bodies).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(p.formTimeout))
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		if err := r.ParseForm(); err != nil {
			writeError(w, r, errCode(http.StatusBadRequest, "UNSUPPORTED", "token request: form: "+err.Error()))
			return
		}
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "password":
			tok = r.PostForm.Get("password")
		default:
			writeError(w, r, errCode(http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("token request: grant_type %q not supported: use password with the install token", gt)))
			return
		}
	default:
		writeError(w, r, errCode(http.StatusMethodNotAllowed, "UNSUPPORTED", "token endpoint takes GET or POST"))
		return
	}
	claims, inst, aerr := p.authorize(r.Context(), tok)
	if aerr != nil {
		p.refused(aerr)
		p.challenge(w, r, "")
		writeError(w, r, aerr)
		p.auditRefusal(r, start, "token", route{}, claims, inst, aerr)
		return
	}
	now := start
	// No scope asked for (docker login): the token as presented. Scopes
	// asked for: a token narrowed to what is granted of them, expiring with
	// the token presented (see grantScopes).
	granted := ""
	if scopes := requestedScopes(r); len(scopes) > 0 {
		names, g, aerr := grantScopes(claims, inst, scopes)
		if aerr != nil {
			writeError(w, r, aerr)
			return
		}
		ttl := claims.ExpiresAt().Sub(now)
		if ttl <= 0 {
			writeError(w, r, errUnauthorized("expired", "install token expired"))
			return
		}
		narrowed := claims
		narrowed.Scoped, narrowed.Scope = true, names
		t, c, err := p.keys.Mint(narrowed, ttl)
		if err != nil {
			p.log.Error("mint scoped token", "install", inst.Name, "err", err)
			writeError(w, r, errCode(http.StatusServiceUnavailable, "UNAVAILABLE", "token signing unavailable"))
			return
		}
		tok, claims, granted = t, c, g
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(tokenResponse{
		Token: tok, AccessToken: tok,
		ExpiresIn: int64(claims.ExpiresAt().Sub(now) / time.Second),
		IssuedAt:  now.UTC().Format(time.RFC3339),
		Scope:     granted,
	})
}

// challenge sets the Bearer challenge pointing at the hub's token endpoint.
func (p *Proxy) challenge(w http.ResponseWriter, r *http.Request, scope string) {
	c := fmt.Sprintf(`Bearer realm="%s%s",service="%s"`, p.baseURL(r), tokenPath, p.service)
	if scope != "" {
		c += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", c)
}

// baseURL is the hub's URL as clients reach it.
func (p *Proxy) baseURL(r *http.Request) string {
	if p.publicURL != "" {
		return p.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (p *Proxy) refused(e *apiError) {
	if e.reason != "" && p.metrics != nil {
		p.metrics.TokensRefused.WithLabelValues(e.reason).Inc()
	}
}
