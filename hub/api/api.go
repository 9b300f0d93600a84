// Package api is the hub's operator REST API under /api/v1/: workspaces,
// registry credentials, installs, install tokens and the audit trail.
//
// Every route needs the admin bearer token. Request and response bodies are
// JSON; errors are {"error": "message"}. Upstream secrets are accepted on
// create and update only and never appear in any response, error or log
// line.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1/"

// Deps is what the API needs.
type Deps struct {
	Store   Store
	Sealer  *secrets.Sealer
	Keyring *token.Keyring
	// AdminToken authorises every request (Authorization: Bearer ...). It
	// is compared in constant time. An empty token refuses every request.
	AdminToken string
	// Check runs a real handshake with the upstream of a credential
	// (registry test). Nil answers 501.
	Check func(ctx context.Context, c store.Credential, s credential.Secret, repo string) upstream.CheckResult
	// Logger receives one line per request (method, route, status); nil
	// discards.
	Logger *slog.Logger
	// Now replaces time.Now (tests); optional.
	Now func() time.Time
	// OnTokenMinted is called after every minted install token (metrics);
	// optional.
	OnTokenMinted func()
	// Revoker, when set, pushes revocations to node agents after changes.
	Revoker Revoker
	// PublicURL is the hub's public URL; its host is what SDL imports
	// point rewritten images at (default: the request's Host). Optional.
	PublicURL string
	// AuditFlush, when set, writes the audit events still queued before
	// an audit query, so that a pull that just ended is in the answer.
	AuditFlush func(context.Context) error
	// Cache is the pull-through cache; nil when the hub runs without one
	// (its routes answer 501).
	Cache CacheAdmin
}

// route is one entry of the route table. The table is the single source of
// the API's routes: New registers it and the OpenAPI test compares it with
// docs/openapi.yaml.
type route struct {
	method string
	path   string // http.ServeMux pattern path, also the OpenAPI path
	handle func(*server, http.ResponseWriter, *http.Request) error
}

const (
	pWorkspaces = "/api/v1/workspaces"
	pWorkspace  = pWorkspaces + "/{ws}"
	pRegistries = pWorkspace + "/registries"
	pRegistry   = pRegistries + "/{name}"
	pInstalls   = pWorkspace + "/installs"
	pInstall    = pInstalls + "/{name}"
	pClusters   = "/api/v1/clusters"
	pCluster    = pClusters + "/{cluster}"
)

var routes = []route{
	{"POST", pWorkspaces, (*server).createWorkspace},
	{"GET", pWorkspaces, (*server).listWorkspaces},
	{"GET", pWorkspace, (*server).getWorkspace},
	{"DELETE", pWorkspace, (*server).deleteWorkspace},

	{"POST", pRegistries, (*server).createRegistry},
	{"GET", pRegistries, (*server).listRegistries},
	{"GET", pRegistry, (*server).getRegistry},
	{"PATCH", pRegistry, (*server).updateRegistry},
	{"DELETE", pRegistry, (*server).deleteRegistry},
	{"POST", pRegistry + "/enable", (*server).enableRegistry},
	{"POST", pRegistry + "/disable", (*server).disableRegistry},
	{"POST", pRegistry + "/test", (*server).testRegistry},

	{"POST", pInstalls, (*server).createInstall},
	{"GET", pInstalls, (*server).listInstalls},
	{"GET", pInstall, (*server).getInstall},
	{"PATCH", pInstall, (*server).updateInstall},
	{"DELETE", pInstall, (*server).deleteInstall},
	{"POST", pInstall + "/enable", (*server).enableInstall},
	{"POST", pInstall + "/disable", (*server).disableInstall},
	{"POST", pInstall + "/tokens", (*server).mintToken},

	{"POST", pWorkspace + "/sdl-imports", (*server).importSDL},

	{"POST", pClusters, (*server).createCluster},
	{"GET", pClusters, (*server).listClusters},
	{"GET", pCluster, (*server).getCluster},
	{"DELETE", pCluster, (*server).deleteCluster},
	{"POST", pCluster + "/join-token", (*server).rotateJoinToken},
	{"GET", pCluster + "/jwks", (*server).getClusterKeys},
	{"PUT", pCluster + "/jwks", (*server).setClusterKeys},
	{"POST", pCluster + "/jwks/approve", (*server).approveClusterKeys},
	{"GET", pCluster + "/nodes", (*server).listNodes},
	{"POST", pCluster + "/nodes/{node}/revoke", (*server).revokeNode},

	{"GET", "/api/v1/audit", (*server).queryAudit},
	{"GET", "/api/v1/audit/stats", (*server).auditStats},
	{"GET", "/api/v1/audit/export", (*server).exportAudit},

	{"GET", "/api/v1/cache", (*server).getCacheStats},
	{"GET", "/api/v1/cache/entries", (*server).listCacheEntries},
	{"DELETE", "/api/v1/cache/entries/{digest}", (*server).evictCacheEntry},
	{"POST", "/api/v1/cache/warm", (*server).warmCache},
}

type server struct {
	d        Deps
	mux      *http.ServeMux
	log      *slog.Logger
	now      func() time.Time
	adminSum [sha256.Size]byte
}

// New returns the API handler. Mount it at /api/v1/ (it serves only paths
// under Prefix and answers 404 for anything else).
func New(d Deps) http.Handler {
	s := &server{d: d, mux: http.NewServeMux(), log: d.Logger, now: d.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.adminSum = sha256.Sum256([]byte(d.AdminToken))
	for _, rt := range routes {
		h := rt.handle
		s.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := h(s, w, r); err != nil {
				s.writeErr(w, r, err)
			}
		})
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &httprec.Recorder{ResponseWriter: w}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	route := ""
	defer func() {
		if route == "" {
			route = "unmatched"
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "api request",
			// Any token is a method, up to the header limit, and this line
			// is written before authentication: keep it short.
			slog.String("method", shorten(r.Method, 16)),
			slog.String("route", route),
			slog.Int("status", rec.Status),
			slog.Int64("duration_ms", time.Since(start).Milliseconds()),
		)
	}()

	if !s.authorized(r) {
		h.Set("WWW-Authenticate", `Bearer realm="pullgate-hub"`)
		writeJSON(rec, http.StatusUnauthorized, Error{Error: "unauthorized: send the admin token as Authorization: Bearer <token>"})
		return
	}
	if _, pat := s.mux.Handler(r); pat == "" {
		if allow := s.allowedMethods(r); len(allow) > 0 {
			h.Set("Allow", strings.Join(allow, ", "))
			writeJSON(rec, http.StatusMethodNotAllowed, Error{Error: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		writeJSON(rec, http.StatusNotFound, Error{Error: fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path)})
		return
	}
	s.mux.ServeHTTP(rec, r)
	route = r.Pattern
}

// allowedMethods lists the methods that have a route for r's path.
func (s *server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" {
			out = append(out, m)
		}
	}
	return out
}

func (s *server) authorized(r *http.Request) bool {
	if s.d.AdminToken == "" {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Hash first so that the comparison takes the same time whatever the
	// lengths.
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1
}

// shorten cuts s to at most n bytes for a log line.
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
