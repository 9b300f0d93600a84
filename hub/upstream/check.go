package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// CheckResult is what `registry test` reports: each step of a real
// handshake with the upstream, and the upstream's own error when one fails.
// It never holds secret material.
type CheckResult struct {
	Upstream      string `json:"upstream"`              // address contacted
	Reachable     bool   `json:"reachable"`             // /v2/ answered
	AuthScheme    string `json:"auth_scheme,omitempty"` // "basic", "bearer" or "" (none)
	Authenticated bool   `json:"authenticated"`
	Repository    string `json:"repository,omitempty"`
	CanPull       bool   `json:"can_pull,omitempty"` // tags of Repository could be listed
	Error         string `json:"error,omitempty"`

	// Per-kind facts, set by credential.Source.Check: the credential kind
	// and how it authenticates, and for kinds whose registry tokens the hub
	// obtains itself (ECR with AWS keys, ACR with a service principal) where
	// from, whether that worked and when the token expires.
	Kind          string     `json:"kind,omitempty"`
	Auth          string     `json:"auth,omitempty"`
	TokenSource   string     `json:"token_source,omitempty"`
	TokenObtained bool       `json:"token_obtained,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	Warnings      []string   `json:"warnings,omitempty"`
}

// Check performs a real handshake with the upstream of c: ping, then
// authentication (a token exchange for Bearer upstreams, an authenticated
// /v2/ for Basic ones), then, when repo is given, a tags listing of it.
// Nothing is cached: a test always talks to the upstream.
func (p *Pool) Check(ctx context.Context, c store.Credential, auth authn.Authenticator, repo string) CheckResult {
	res := p.check(ctx, c, auth, repo)
	// An upstream may echo what it was sent; the result goes to an API client.
	if cfg, err := authn.Authorization(ctx, auth); err == nil {
		res.Error = Redact(res.Error, cfg)
	}
	return res
}

// Redact removes a credential's secret, in the forms it travels in, from s.
func Redact(s string, cfg *authn.AuthConfig) string {
	for _, secret := range []string{cfg.Password, cfg.RegistryToken, cfg.IdentityToken, cfg.Auth,
		base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password)),
		url.QueryEscape(cfg.Password)} {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "REDACTED")
		}
	}
	return s
}

// ErrRejectedCredentials names a 401 from the upstream (or its token
// service) to a request that carried the credential.
var ErrRejectedCredentials = errors.New("the upstream rejected the username or password")

func (p *Pool) check(ctx context.Context, c store.Credential, auth authn.Authenticator, repo string) CheckResult {
	reg, err := Registry(c)
	if err != nil {
		return CheckResult{Error: err.Error()}
	}
	res := CheckResult{Upstream: reg.RegistryStr()}
	// Errors here are the hub's own descriptions (HandshakeError, Describe):
	// statuses and connection failures, never an upstream's answer body.
	ch, err := p.ping(ctx, reg, c)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Reachable = true
	res.AuthScheme = strings.ToLower(ch.Scheme)
	var r imageref.Repo
	if repo != "" {
		prefix, _ := imageref.ParsePrefix(c.Host)
		if r, err = imageref.ParseRepo(prefix.Host, repo); err != nil {
			res.Error = err.Error()
			return res
		}
		res.Repository = r.String()
	}
	t := Target{Credential: c, Repo: r, Auth: func(context.Context) (authn.Authenticator, error) { return auth, nil }}
	conn, _, err := p.fresh().dial(ctx, t)
	if err != nil {
		var he *HandshakeError
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			res.Error = "authenticate: " + ErrRejectedCredentials.Error() + " (" + Describe(err) + ")"
		} else {
			res.Error = "authenticate: " + Describe(err)
		}
		return res
	}
	if res.AuthScheme != "bearer" {
		// Basic upstreams: /v2/ with the credential must answer 200.
		if status, err := get(ctx, conn, "/v2/"); err != nil || status != http.StatusOK {
			res.Error = fmt.Sprintf("authenticate: /v2/ answered %s", statusText(status, err))
			if status == http.StatusUnauthorized {
				res.Error = fmt.Sprintf("authenticate: %v (/v2/ answered %s)", ErrRejectedCredentials, statusText(status, err))
			}
			return res
		}
	}
	res.Authenticated = true
	if repo == "" {
		return res
	}
	status, err := get(ctx, conn, "/v2/"+r.Path+"/tags/list?n=1")
	if err != nil || status != http.StatusOK {
		res.Error = fmt.Sprintf("list tags of %s: %s", r, statusText(status, err))
		return res
	}
	res.CanPull = true
	return res
}

func get(ctx context.Context, conn *Conn, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, conn.Base+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: conn.Transport, CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func statusText(status int, err error) string {
	if err != nil {
		return Describe(err)
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}
