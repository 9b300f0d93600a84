// Package api is the hub's operator REST API under /api/v1/: workspaces,
// registry credentials, installs, install tokens and the audit trail.
//
// Every route needs a principal: the hub admin (the admin token) or a user
// (an API token, or the console session cookie), and each route declares
// which (access.go). Request and response bodies are JSON; errors are {"error": "message"}. Upstream secrets are accepted on
// create and update only and never appear in any response, error or log
// line.
package api

import (
	"context"
	"crypto/sha256"
	"errors"
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
	// AdminToken is the hub admin's token (Authorization: Bearer ..., or a
	// console sign-in). It is compared in constant time. Empty: no admin
	// (users' API tokens still work).
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
	// SessionTTL is a console session's absolute lifetime and SessionIdle
	// how long it lasts without a request (defaults DefaultSessionTTL,
	// DefaultSessionIdle).
	SessionTTL  time.Duration
	SessionIdle time.Duration
	// AkashTenants turns on tenant self-service (tenant.go): Akash
	// account owners log in with a signature of their account's key. Off,
	// its routes answer 404. Needs PublicURL.
	AkashTenants bool
	// ServiceAccounts verifies a cluster's service-account tokens (the
	// token service's verifier): the Akash binding controller's
	// authentication. Nil: only the admin token reaches the controller
	// routes.
	ServiceAccounts ServiceAccountVerifier
	// AkashImportCredentials lets a cluster's Akash controller import
	// registry credentials from lease manifests (opt-in).
	AkashImportCredentials bool
}

// route is one entry of the route table. The table is the single source of
// the API's routes: New registers it and the OpenAPI test compares it with
// docs/openapi.yaml.
//
// Each route declares its access rule (access.go) and, when it changes
// state, the action its activity rows name ("registry.create"). New
// refuses a route without them.
type route struct {
	method string
	path   string // http.ServeMux pattern path, also the OpenAPI path
	access rule
	action string
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

var (
	viewer   = wsRole(store.RoleViewer)
	operator = wsRole(store.RoleOperator)
	owner    = wsRole(store.RoleOwner)
	// Clusters: by the workspace that owns them.
	cViewer   = clusterRole(store.RoleViewer)
	cOperator = clusterRole(store.RoleOperator)
	// cRead also lets members see a shared cluster's name.
	cRead = rule{kind: ruleCluster, role: store.RoleViewer, sharedRead: true}
)

var routes = []route{
	{"POST", "/api/v1/session", public, "session.create", (*server).createSession},
	{"GET", "/api/v1/session", public, "", (*server).getSession},
	{"DELETE", "/api/v1/session", public, "session.delete", (*server).deleteSession},
	{"GET", "/api/v1/whoami", signedIn, "", (*server).whoami},

	// Tenant self-service (--akash-tenants): the handlers check the flag,
	// rate-limit and verify the signature.
	{"POST", "/api/v1/tenant/challenge", public, "tenant.challenge", (*server).createTenantChallenge},
	{"POST", "/api/v1/tenant/login", public, "tenant.login", (*server).loginTenant},

	{"POST", "/api/v1/tokens", signedIn, "api_token.create", (*server).createAPIToken},
	{"GET", "/api/v1/tokens", signedIn, "", (*server).listAPITokens},
	{"DELETE", "/api/v1/tokens/{id}", signedIn, "api_token.revoke", (*server).revokeAPIToken},
	{"DELETE", "/api/v1/users/{user}", admin, "user.delete", (*server).deleteUser},

	{"POST", pWorkspaces, admin, "workspace.create", (*server).createWorkspace},
	{"GET", pWorkspaces, signedIn, "", (*server).listWorkspaces},
	{"GET", pWorkspace, viewer, "", (*server).getWorkspace},
	{"DELETE", pWorkspace, admin, "workspace.delete", (*server).deleteWorkspace},

	{"GET", pWorkspace + "/members", owner, "", (*server).listMembers},
	{"POST", pWorkspace + "/members", owner, "member.add", (*server).addMember},
	{"PATCH", pWorkspace + "/members/{user}", owner, "member.update", (*server).updateMember},
	{"DELETE", pWorkspace + "/members/{user}", owner, "member.remove", (*server).removeMember},
	{"GET", pWorkspace + "/activity", owner, "", (*server).workspaceActivity},

	{"POST", pRegistries, operator, "registry.create", (*server).createRegistry},
	{"GET", pRegistries, viewer, "", (*server).listRegistries},
	{"GET", pRegistry, viewer, "", (*server).getRegistry},
	{"PATCH", pRegistry, operator, "registry.update", (*server).updateRegistry},
	{"DELETE", pRegistry, operator, "registry.delete", (*server).deleteRegistry},
	{"POST", pRegistry + "/enable", operator, "registry.enable", (*server).enableRegistry},
	{"POST", pRegistry + "/disable", operator, "registry.disable", (*server).disableRegistry},
	{"POST", pRegistry + "/test", operator, "registry.test", (*server).testRegistry},

	{"POST", pInstalls, operator, "install.create", (*server).createInstall},
	{"GET", pInstalls, viewer, "", (*server).listInstalls},
	{"GET", pInstall, viewer, "", (*server).getInstall},
	{"PATCH", pInstall, operator, "install.update", (*server).updateInstall},
	{"DELETE", pInstall, operator, "install.delete", (*server).deleteInstall},
	{"POST", pInstall + "/enable", operator, "install.enable", (*server).enableInstall},
	{"POST", pInstall + "/disable", operator, "install.disable", (*server).disableInstall},
	{"POST", pInstall + "/tokens", operator, "install_token.mint", (*server).mintToken},

	{"POST", pWorkspace + "/sdl-imports", operator, "sdl.import", (*server).importSDL},

	// Creating a cluster needs operator in the body's workspace, or the
	// admin for a shared one (createCluster checks).
	{"POST", pClusters, signedIn, "cluster.create", (*server).createCluster},
	{"GET", pClusters, signedIn, "", (*server).listClusters},
	{"GET", pCluster, cRead, "", (*server).getCluster},
	{"DELETE", pCluster, cOperator, "cluster.delete", (*server).deleteCluster},
	{"POST", pCluster + "/join-token", cOperator, "cluster.join_token", (*server).rotateJoinToken},
	{"GET", pCluster + "/jwks", cViewer, "", (*server).getClusterKeys},
	{"PUT", pCluster + "/jwks", cOperator, "cluster.set_keys", (*server).setClusterKeys},
	{"POST", pCluster + "/jwks/approve", cOperator, "cluster.approve_keys", (*server).approveClusterKeys},
	{"PATCH", pCluster, admin, "cluster.update", (*server).updateCluster},
	{"GET", pCluster + "/nodes", cViewer, "", (*server).listNodes},
	{"POST", pCluster + "/nodes/{node}/revoke", cOperator, "node.revoke", (*server).revokeNode},

	// Akash lease namespaces: the cluster's binding controller reports
	// them (akash_leases.go); a workspace sees its own account's.
	{"PUT", pCluster + "/akash/leases", akashController, "akash.leases_sync", (*server).putAkashLeases},
	{"GET", pCluster + "/akash/leases", admin, "", (*server).listClusterAkashLeases},
	{"PUT", pCluster + "/akash/leases/{namespace}", akashController, "akash.lease_put", (*server).putAkashLease},
	{"DELETE", pCluster + "/akash/leases/{namespace}", akashController, "akash.lease_delete", (*server).deleteAkashLease},
	{"POST", pCluster + "/akash/leases/{namespace}/credentials", akashController, "akash.credentials_import", (*server).importAkashCredentials},
	{"GET", pWorkspace + "/akash/leases", viewer, "", (*server).listWorkspaceAkashLeases},

	// The pull audit: a member sees its workspaces' events (queryAudit).
	{"GET", "/api/v1/audit", signedIn, "", (*server).queryAudit},
	{"GET", "/api/v1/audit/stats", signedIn, "", (*server).auditStats},
	{"GET", "/api/v1/audit/export", signedIn, "", (*server).exportAudit},
	{"GET", "/api/v1/activity", admin, "", (*server).allActivity},

	{"GET", "/api/v1/cache", admin, "", (*server).getCacheStats},
	{"GET", "/api/v1/cache/entries", admin, "", (*server).listCacheEntries},
	{"DELETE", "/api/v1/cache/entries/{digest}", admin, "cache.evict", (*server).evictCacheEntry},
	{"POST", "/api/v1/cache/warm", admin, "cache.warm", (*server).warmCache},
}

type server struct {
	d      Deps
	mux    *http.ServeMux
	log    *slog.Logger
	now    func() time.Time
	tokens *tokenResolver
	// adminFP fingerprints the admin token for admin sessions.
	adminFP     []byte
	sessionTTL  time.Duration
	sessionIdle time.Duration
	// byPattern finds a matched route's entry ("METHOD path").
	byPattern map[string]*route
	// tenantLimit rate-limits the public tenant routes.
	tenantLimit *tenantLimiter
}

// New returns the API handler. Mount it at /api/v1/ (it serves only paths
// under Prefix and answers 404 for anything else). It panics on a route
// without an access rule or, for a state change, without an action: a
// programming error that no test run can miss.
func New(d Deps) http.Handler {
	s := &server{d: d, mux: http.NewServeMux(), log: d.Logger, now: d.Now, byPattern: map[string]*route{},
		sessionTTL: d.SessionTTL, sessionIdle: d.SessionIdle, tenantLimit: newTenantLimiter()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sessionTTL <= 0 {
		s.sessionTTL = DefaultSessionTTL
	}
	if s.sessionIdle <= 0 {
		s.sessionIdle = DefaultSessionIdle
	}
	s.tokens = &tokenResolver{store: d.Store, adminSum: sha256.Sum256([]byte(d.AdminToken)), hasAdmin: d.AdminToken != "", now: s.now}
	s.adminFP = adminFP(d.AdminToken)
	for i := range routes {
		rt := &routes[i]
		if err := checkRoute(rt); err != nil {
			panic(err)
		}
		s.byPattern[rt.method+" "+rt.path] = rt
		s.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := s.authorize(r, rt); err != nil {
				s.writeErr(w, r, err)
				return
			}
			if err := rt.handle(s, w, r); err != nil {
				s.writeErr(w, r, err)
			}
		})
	}
	return s
}

// checkRoute refuses a route table entry without its access rule, or a
// state-changing one without the action its activity rows name.
func checkRoute(rt *route) error {
	if !rt.access.valid() {
		return fmt.Errorf("api: route %s %s has no access rule", rt.method, rt.path)
	}
	// A route of a workspace's or a cluster's objects is checked against
	// that workspace; "any signed-in principal" there would let every
	// member of every workspace in.
	k := rt.access.kind
	if strings.Contains(rt.path, "{ws}") && k != ruleWorkspace && k != ruleAdmin {
		return fmt.Errorf("api: route %s %s names a workspace but its rule is %s, not a workspace role", rt.method, rt.path, rt.access)
	}
	if strings.Contains(rt.path, "{cluster}") && k != ruleCluster && k != ruleAdmin && k != ruleAkashController {
		return fmt.Errorf("api: route %s %s names a cluster but its rule is %s, not a cluster role", rt.method, rt.path, rt.access)
	}
	if !safeMethod(rt.method) && rt.action == "" {
		return fmt.Errorf("api: route %s %s changes state but names no activity action", rt.method, rt.path)
	}
	return nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &httprec.Recorder{ResponseWriter: w}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	ri := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
	var rt *route
	defer func() {
		route, who := "unmatched", ""
		if rt != nil {
			route = rt.method + " " + rt.path
			s.recordActivity(r, rt, ri, rec.Status)
		}
		if ri.principal != nil {
			who = ri.principal.Kind + ":" + ri.principal.Name
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "api request",
			// Any token is a method, up to the header limit, and this line
			// is written before authentication: keep it short.
			slog.String("method", shorten(r.Method, 16)),
			slog.String("route", route),
			slog.String("principal", who),
			slog.Int("status", rec.Status),
			slog.Int64("duration_ms", time.Since(start).Milliseconds()),
		)
	}()

	_, pat := s.mux.Handler(r)
	matched := s.byPattern[pat]
	if matched == nil || matched.access.kind != rulePublic {
		authenticate := s.authenticate
		if matched != nil && matched.access.kind == ruleAkashController {
			authenticate = s.authenticateController
		}
		p, err := authenticate(r)
		if errors.Is(err, errUnauthenticated) {
			unauthorized(rec, unauthorizedHelp)
			return
		}
		if err != nil {
			s.writeErr(rec, r, err)
			return
		}
		ri.principal = p
		rt = matched // a CSRF refusal below is recorded as the route's
		if err := checkCSRF(r, p); err != nil {
			ri.refused = true
			s.writeErr(rec, r, err)
			return
		}
	}
	rt = matched
	if matched == nil {
		if allow := s.allowedMethods(r); len(allow) > 0 {
			h.Set("Allow", strings.Join(allow, ", "))
			writeJSON(rec, http.StatusMethodNotAllowed, Error{Error: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		writeJSON(rec, http.StatusNotFound, Error{Error: fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path)})
		return
	}
	s.mux.ServeHTTP(rec, r)
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

// shorten cuts s to at most n bytes for a log line.
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
