package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// MaxRepos bounds an install's allow-list; maxPatternLen one pattern (a
// host plus a 255-character repository path).
const (
	MaxRepos      = 256
	maxPatternLen = 512
)

// Token TTL bounds.
const (
	DefaultTokenTTL = 10 * time.Minute
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 24 * time.Hour
)

const nameRule = "must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"

func checkName(field, v string) error {
	if v == "" {
		return badRequest("%s: required", field)
	}
	if !store.ValidName(v) {
		return badRequest("%s %q: %s", field, v, nameRule)
	}
	return nil
}

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func checkUsername(u string) error {
	if len(u) > 256 {
		return badRequest("username: longer than 256 bytes")
	}
	if strings.IndexFunc(u, unicode.IsControl) >= 0 {
		return badRequest("username: contains control characters")
	}
	return nil
}

// ---------------------------------------------------------------------------
// Workspaces

func (s *server) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req CreateWorkspaceRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	ws, err := s.d.Store.CreateWorkspace(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, workspaceView(ws))
	return nil
}

func (s *server) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	wss, err := s.d.Store.ListWorkspaces(r.Context())
	if err != nil {
		return err
	}
	out := WorkspaceList{Workspaces: make([]Workspace, 0, len(wss))}
	for _, ws := range wss {
		out.Workspaces = append(out.Workspaces, workspaceView(ws))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.d.Store.GetWorkspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceView(ws))
	return nil
}

func (s *server) deleteWorkspace(w http.ResponseWriter, r *http.Request) error {
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	ctx, name := r.Context(), r.PathValue("ws")
	ws, err := s.d.Store.GetWorkspace(ctx, name)
	if err != nil {
		return err
	}
	// Read before the delete for the pushes after it; the store decides
	// (in its transaction) what is actually removed.
	ins, err := s.d.Store.ListInstalls(ctx, name)
	if err != nil {
		return err
	}
	clusters, err := s.d.Store.ListClusters(ctx)
	if err != nil {
		return err
	}
	gone, err := s.d.Store.DeleteWorkspace(ctx, name, force)
	if err != nil {
		return err
	}
	// Agents of the workspace's clusters drop everything and are
	// disconnected; installs on shared clusters are revoked there.
	for _, c := range clusters {
		if c.WorkspaceID == ws.ID {
			s.revoke("cluster "+c.Name, func(rv Revoker) error { return rv.ClusterDeleted(ctx, c) })
		}
	}
	for _, in := range ins {
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(ctx, in) })
	}
	writeJSON(w, http.StatusOK, deleteWorkspaceView(gone))
	return nil
}

// ---------------------------------------------------------------------------
// Registry credentials

func (s *server) createRegistry(w http.ResponseWriter, r *http.Request) error {
	var req CreateRegistryRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	prefix, endpoint, err := CheckCreateRegistry(req)
	if err != nil {
		return err
	}
	ws, err := s.d.Store.GetWorkspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	prep, err := s.prepareCreate(req, prefix.String())
	if err != nil {
		return err
	}
	secret := prep.Secret
	routing, err := s.checkNewPrefix(r.Context(), ws.Name, req.Name, prefix)
	if err != nil {
		return err
	}
	c := store.Credential{
		WorkspaceID:         ws.ID,
		Name:                req.Name,
		Host:                prefix.String(),
		Endpoint:            endpoint,
		Kind:                prep.Kind,
		Username:            prep.Username,
		Insecure:            req.Insecure,
		Enabled:             true,
		AllowPrivateNetwork: req.AllowPrivateNetwork,
		RealmHosts:          req.RealmHosts,
	}
	sealed, err := credential.Seal(s.d.Sealer, c, secret)
	if err != nil {
		return err
	}
	c, err = s.d.Store.CreateCredential(r.Context(), ws.Name, c, sealed)
	if err != nil {
		return err
	}
	// A new credential changes the workspace's epoch and may add an
	// upstream host: agents drop the workspace's tokens and resync.
	s.revoke("registry "+c.Name, func(rv Revoker) error { return rv.CredentialsChanged(r.Context(), c.WorkspaceID) })
	view := s.describeWith(c, secret)
	view.Warnings = append(view.Warnings, routing...)
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// checkRealmHosts validates operator-named token-realm hosts.
func checkRealmHosts(hosts []string) error {
	for _, h := range hosts {
		if err := upstream.ValidRealmHost(h); err != nil {
			return badRequest("realm_hosts: %v", err)
		}
	}
	return nil
}

// parseEndpoint validates an optional credential endpoint and returns its
// normal form ("" stays "").
func parseEndpoint(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if strings.Contains(s, "@") {
		// Not echoed: it may be user:password@host.
		return "", badRequest("endpoint: must not contain user info; give username and password separately")
	}
	u, err := upstream.ParseEndpoint(s)
	if err != nil {
		return "", badRequest("%v", err)
	}
	return u.String(), nil
}

func (s *server) listRegistries(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.d.Store.ListCredentials(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := RegistryList{Registries: make([]Registry, 0, len(cs))}
	for _, c := range cs {
		out.Registries = append(out.Registries, s.describe(r.Context(), c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getRegistry(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.describe(r.Context(), c))
	return nil
}

func (s *server) updateRegistry(w http.ResponseWriter, r *http.Request) error {
	var req UpdateRegistryRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Kind == nil && req.Username == nil && req.Password == nil && req.Insecure == nil && req.Endpoint == nil && req.ECR == nil && req.ACR == nil &&
		req.AllowPrivateNetwork == nil && req.RealmHosts == nil {
		return badRequest("nothing to update: give kind, username, password, endpoint, insecure, allow_private_network, realm_hosts, ecr or acr")
	}
	if err := CheckUpdateRegistry(req); err != nil {
		return err
	}
	u := store.CredentialUpdate{Username: req.Username, Insecure: req.Insecure, AllowPrivateNetwork: req.AllowPrivateNetwork}
	if req.RealmHosts != nil {
		hosts := append([]string{}, *req.RealmHosts...)
		u.RealmHosts = &hosts
	}
	if req.Endpoint != nil {
		ep, _ := parseEndpoint(*req.Endpoint) // checked above
		u.Endpoint = &ep
	}
	wsName, name := r.PathValue("ws"), r.PathValue("name")
	c, err := s.d.Store.GetCredential(r.Context(), wsName, name)
	if err != nil {
		return err
	}
	if req.Kind != nil && *req.Kind != c.Kind {
		return s.changeRegistryKind(w, r, c, *req.Kind, req, u)
	}
	username := c.Username
	if req.Username != nil {
		username = *req.Username
		if (c.Kind == credential.KindBasic || c.Kind == credential.KindACR) && username == "" && req.ACR == nil {
			return badRequest("username: kind %s needs a username", c.Kind)
		}
		if c.Kind == credential.KindECR && username != c.Username {
			return badRequest("username: kind ecr: the username is always AWS")
		}
	}
	var secret *credential.Secret
	if needsNewSecret(c, req) {
		prep, err := s.prepareUpdate(r.Context(), c, username, req)
		if err != nil {
			return err
		}
		if u.Secret, err = credential.Seal(s.d.Sealer, c, prep.Secret); err != nil {
			return err
		}
		u.Username, secret = &prep.Username, &prep.Secret
	}
	c, err = s.d.Store.UpdateCredential(r.Context(), wsName, name, u)
	if err != nil {
		return err
	}
	if secret != nil {
		writeJSON(w, http.StatusOK, s.describeWith(c, *secret))
		return nil
	}
	writeJSON(w, http.StatusOK, s.describe(r.Context(), c))
	return nil
}

func (s *server) setRegistryEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	c, err := s.d.Store.UpdateCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"), store.CredentialUpdate{Enabled: &enabled})
	if err != nil {
		return err
	}
	s.revoke("registry "+c.Name, func(rv Revoker) error { return rv.CredentialsChanged(r.Context(), c.WorkspaceID) })
	writeJSON(w, http.StatusOK, s.describe(r.Context(), c))
	return nil
}

func (s *server) enableRegistry(w http.ResponseWriter, r *http.Request) error {
	return s.setRegistryEnabled(w, r, true)
}

func (s *server) disableRegistry(w http.ResponseWriter, r *http.Request) error {
	return s.setRegistryEnabled(w, r, false)
}

func (s *server) deleteRegistry(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.d.Store.DeleteCredential(r.Context(), r.PathValue("ws"), r.PathValue("name")); err != nil {
		return err
	}
	s.revoke("registry "+c.Name, func(rv Revoker) error { return rv.CredentialsChanged(r.Context(), c.WorkspaceID) })
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) testRegistry(w http.ResponseWriter, r *http.Request) error {
	var req TestRegistryRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	if s.d.Check == nil {
		return errorf(http.StatusNotImplemented, "registry test is not available on this hub")
	}
	c, err := s.d.Store.GetCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	repo := ""
	if req.Repository != "" {
		p, err := imageref.ParsePrefix(c.Host)
		if err != nil {
			return fmt.Errorf("stored host of credential %q: %w", c.Name, err)
		}
		path := strings.TrimPrefix(req.Repository, p.Host+"/")
		rr, err := imageref.ParseRepo(p.Host, path)
		if err != nil {
			return badRequest("repository: %v", err)
		}
		repo = rr.Path
	}
	sealed, err := s.d.Store.CredentialSecret(r.Context(), c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("secret of credential %q: %w", c.Name, errInternal(err))
	}
	secret, err := credential.Open(s.d.Sealer, c, sealed)
	if err != nil {
		return err
	}
	res := s.d.Check(r.Context(), c, secret, repo)
	// Defence in depth: whatever the upstream echoed, the secret does not
	// go back out.
	if secret.Password != "" {
		res.Error = strings.ReplaceAll(res.Error, secret.Password, "REDACTED")
		res.Upstream = strings.ReplaceAll(res.Upstream, secret.Password, "REDACTED")
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// errInternal strips the store sentinels from err so that a missing secret
// version reads as the internal inconsistency it is, not as a 404.
func errInternal(err error) error { return fmt.Errorf("%s", err.Error()) }

// ---------------------------------------------------------------------------
// Installs

// parseRepos validates allow-list patterns and returns their canonical
// forms, without duplicates, in the given order.
func parseRepos(repos []string) ([]string, error) {
	if len(repos) > MaxRepos {
		return nil, badRequest("repos: %d patterns, at most %d allowed", len(repos), MaxRepos)
	}
	out := make([]string, 0, len(repos))
	seen := map[string]bool{}
	for i, s := range repos {
		if len(s) > maxPatternLen {
			return nil, badRequest("repos[%d]: longer than %d bytes", i, maxPatternLen)
		}
		p, err := imageref.ParsePattern(s)
		if err != nil {
			return nil, badRequest("repos[%d]: %v", i, err)
		}
		if k := p.String(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func (s *server) createInstall(w http.ResponseWriter, r *http.Request) error {
	var req CreateInstallRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	if req.AllRepos && len(req.Repos) > 0 {
		return badRequest("repos and all_repos exclude each other: give allow-list patterns or all_repos: true")
	}
	if !req.AllRepos && len(req.Repos) == 0 {
		// The broad grant is never a default: an install that may pull
		// everything its workspace's credentials reach says so.
		return badRequest("repos: required: give allow-list patterns (e.g. [\"ghcr.io/acme/*\"]) or all_repos: true")
	}
	repos, err := parseRepos(req.Repos)
	if err != nil {
		return err
	}
	if err := checkBinding(req.Cluster, req.Namespace, req.ServiceAccount); err != nil {
		return err
	}
	if req.ServiceAccount != "" && req.Namespace == "" {
		return badRequest("service_account: needs a namespace")
	}
	if err := s.checkInstallCluster(r.Context(), r.PathValue("ws"), req.Cluster, req.Namespace); err != nil {
		return err
	}
	in, err := s.d.Store.CreateInstall(r.Context(), r.PathValue("ws"), store.Install{
		Name:           req.Name,
		Cluster:        req.Cluster,
		Namespace:      req.Namespace,
		ServiceAccount: req.ServiceAccount,
		Repos:          repos,
		Enabled:        true,
	})
	if err != nil {
		return err
	}
	s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallAdded(r.Context(), in) })
	view := installView(in)
	view.Warnings = s.repoWarnings(r.Context(), r.PathValue("ws"), in.Repos)
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// checkBinding validates the form of an install's cluster, namespace and
// service account (each may be empty).
func checkBinding(cluster, namespace, sa string) error {
	if cluster != "" && !store.ValidName(cluster) {
		return badRequest("cluster %q: %s", cluster, nameRule)
	}
	if namespace != "" && !dnsLabel.MatchString(namespace) {
		return badRequest("namespace %q: not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)", namespace)
	}
	if sa != "" && (len(sa) > 253 || !dnsSubdomain.MatchString(sa)) {
		return badRequest("service_account %q: not a Kubernetes service account name", sa)
	}
	return nil
}

func (s *server) listInstalls(w http.ResponseWriter, r *http.Request) error {
	ins, err := s.d.Store.ListInstalls(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := InstallList{Installs: make([]Install, 0, len(ins))}
	for _, in := range ins {
		out.Installs = append(out.Installs, installView(in))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getInstall(w http.ResponseWriter, r *http.Request) error {
	in, err := s.d.Store.GetInstall(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, installView(in))
	return nil
}

func (s *server) updateInstall(w http.ResponseWriter, r *http.Request) error {
	var req UpdateInstallRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	binding := req.Cluster != nil || req.Namespace != nil || req.ServiceAccount != nil
	if req.Repos == nil && !req.AllRepos && !binding {
		return badRequest("nothing to update: give repos, all_repos, cluster, namespace or service_account")
	}
	if req.AllRepos && req.Repos != nil && len(*req.Repos) > 0 {
		return badRequest("repos and all_repos exclude each other: give allow-list patterns or all_repos: true")
	}
	if !req.AllRepos && req.Repos != nil && len(*req.Repos) == 0 {
		return badRequest("repos: an empty allow-list would allow everything: say all_repos: true for that")
	}
	u := store.InstallUpdate{Cluster: req.Cluster, Namespace: req.Namespace, ServiceAccount: req.ServiceAccount}
	if req.Repos != nil || req.AllRepos {
		var in []string
		if req.Repos != nil {
			in = *req.Repos
		}
		repos, err := parseRepos(in)
		if err != nil {
			return err
		}
		u.Repos = &repos
	}
	if err := checkBinding(deref(req.Cluster), deref(req.Namespace), deref(req.ServiceAccount)); err != nil {
		return err
	}
	ctx, wsName, name := r.Context(), r.PathValue("ws"), r.PathValue("name")
	old, err := s.d.Store.GetInstall(ctx, wsName, name)
	if err != nil {
		return err
	}
	if binding {
		cluster, namespace := old.Cluster, old.Namespace
		if req.Cluster != nil {
			cluster = *req.Cluster
		}
		if req.Namespace != nil {
			namespace = *req.Namespace
		}
		if cluster != old.Cluster || namespace != old.Namespace {
			if err := s.checkInstallCluster(ctx, wsName, cluster, namespace); err != nil {
				return err
			}
		}
	}
	in, err := s.d.Store.UpdateInstall(ctx, wsName, name, u)
	if err != nil {
		return err
	}
	if in.ClusterID != old.ClusterID {
		// The old cluster's agents drop the install's tokens; the new
		// cluster's resync and pick it up.
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(ctx, old) })
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallAdded(ctx, in) })
	} else {
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(ctx, in) })
	}
	view := installView(in)
	if u.Repos != nil {
		view.Warnings = s.repoWarnings(ctx, wsName, in.Repos)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *server) setInstallEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	in, err := s.d.Store.UpdateInstall(r.Context(), r.PathValue("ws"), r.PathValue("name"), store.InstallUpdate{Enabled: &enabled})
	if err != nil {
		return err
	}
	s.revoke("install "+in.Name, func(rv Revoker) error {
		if enabled {
			return rv.InstallAdded(r.Context(), in)
		}
		return rv.InstallChanged(r.Context(), in)
	})
	writeJSON(w, http.StatusOK, installView(in))
	return nil
}

func (s *server) enableInstall(w http.ResponseWriter, r *http.Request) error {
	return s.setInstallEnabled(w, r, true)
}

func (s *server) disableInstall(w http.ResponseWriter, r *http.Request) error {
	return s.setInstallEnabled(w, r, false)
}

func (s *server) deleteInstall(w http.ResponseWriter, r *http.Request) error {
	in, err := s.d.Store.GetInstall(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.d.Store.DeleteInstall(r.Context(), r.PathValue("ws"), r.PathValue("name")); err != nil {
		return err
	}
	s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(r.Context(), in) })
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseTTL reads a token lifetime; empty means DefaultTokenTTL.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTokenTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest("ttl %q: not a duration (e.g. 10m, 1h)", s)
	}
	if d < MinTokenTTL || d > MaxTokenTTL {
		return 0, badRequest("ttl %q: must be between %v and %v", s, MinTokenTTL, MaxTokenTTL)
	}
	return d, nil
}

func (s *server) mintToken(w http.ResponseWriter, r *http.Request) error {
	var req MintTokenRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return err
	}
	if s.d.Keyring == nil {
		return errorf(http.StatusNotImplemented, "install tokens are not available on this hub")
	}
	wsName := r.PathValue("ws")
	in, err := s.d.Store.GetInstall(r.Context(), wsName, r.PathValue("name"))
	if err != nil {
		return err
	}
	if !in.Enabled {
		return errorf(http.StatusConflict, "install %q in workspace %q is disabled: enable it before minting tokens", in.Name, wsName)
	}
	tok, claims, err := s.d.Keyring.Mint(token.Claims{
		Install:    in.ID,
		Workspace:  in.WorkspaceID,
		Cluster:    in.Cluster,
		Repos:      in.Repos,
		Generation: in.Generation,
	}, ttl)
	if err != nil {
		return err
	}
	if s.d.OnTokenMinted != nil {
		s.d.OnTokenMinted()
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "install token minted",
		slog.String("workspace", wsName), slog.String("install", in.Name),
		slog.Int64("generation", in.Generation), slog.String("jti", claims.ID),
		slog.Time("expires_at", claims.ExpiresAt()))
	writeJSON(w, http.StatusCreated, Token{
		Token:     tok,
		ExpiresAt: claims.ExpiresAt().UTC(),
		Install:   in.Name,
		Workspace: wsName,
	})
	return nil
}

// ---------------------------------------------------------------------------
// Audit

func (s *server) queryAudit(w http.ResponseWriter, r *http.Request) error {
	q := store.AuditQuery{}
	vals := r.URL.Query()
	for k, v := range vals {
		switch k {
		case "workspace", "install", "since", "after", "limit", "refused":
			if len(v) > 1 {
				return badRequest("query parameter %q given %d times", k, len(v))
			}
		default:
			return badRequest("unknown query parameter %q (want workspace, install, since, after, limit, refused)", k)
		}
	}
	if v := vals.Get("refused"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("refused %q: want true or false", v)
		}
		q.Refused = b
	}
	q.Workspace = vals.Get("workspace")
	q.Install = vals.Get("install")
	if v := vals.Get("since"); v != "" {
		t, err := parseSince(v, s.now())
		if err != nil {
			return err
		}
		q.Since = t
	}
	if v := vals.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("after %q: want an event id (a non-negative integer)", v)
		}
		q.AfterID = n
	}
	if v := vals.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxAuditLimit {
			return badRequest("limit %q: want an integer from 1 to %d", v, store.MaxAuditLimit)
		}
		q.Limit = n
	}
	if s.d.AuditFlush != nil {
		if err := s.d.AuditFlush(r.Context()); err != nil {
			return err
		}
	}
	evs, err := s.d.Store.QueryAudit(r.Context(), q)
	if err != nil {
		return err
	}
	out := AuditEvents{Events: make([]AuditEvent, 0, len(evs))}
	names := newAuditNames(s.d.Store)
	for _, e := range evs {
		v := auditView(e)
		if err := names.name(r.Context(), &v); err != nil {
			return err
		}
		out.Events = append(out.Events, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseSince accepts an RFC 3339 time or a positive duration back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("since %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a positive duration (1h, 30m)", v)
}
