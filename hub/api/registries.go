package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/pkg/imageref"
)

func (s *server) createRegistry(w http.ResponseWriter, r *http.Request) error {
	var req CreateRegistryRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if store.ValidName(req.Name) {
		setTarget(r, "registry", req.Name)
	}
	prefix, endpoint, err := CheckCreateRegistry(req)
	if err != nil {
		return err
	}
	if err := s.checkPrivateNetwork(r, req.AllowPrivateNetwork, false); err != nil {
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
	affected := s.registryInstalls(r.Context(), r.PathValue("ws"), cs)
	for _, c := range cs {
		v := s.describe(r.Context(), c)
		v.Installs = affected[c.Name]
		out.Registries = append(out.Registries, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getRegistry(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"))
	if err != nil {
		return err
	}
	v := s.describe(r.Context(), c)
	v.Installs = s.registryInstalls(r.Context(), r.PathValue("ws"), []store.Credential{c})[c.Name]
	writeJSON(w, http.StatusOK, v)
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
	if s.d.AkashTenants && (req.AllowPrivateNetwork != nil && *req.AllowPrivateNetwork || req.Endpoint != nil || req.RealmHosts != nil) {
		c, err := s.d.Store.GetCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"))
		if err != nil {
			return err
		}
		allow := req.AllowPrivateNetwork != nil && *req.AllowPrivateNetwork
		if err := s.checkPrivateNetwork(r, allow, c.AllowPrivateNetwork && (req.Endpoint != nil || req.RealmHosts != nil)); err != nil {
			return err
		}
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

// checkPrivateNetwork keeps the hub's own network the admin's to open. On a
// hub with Akash tenant self-service (--akash-tenants) anyone with an Akash
// key owns a workspace, so a workspace member may neither let a credential
// reach private addresses (allow) nor move one that may (moves: its
// endpoint or realm hosts) elsewhere; that would be SSRF into the
// provider's network (docs/security.md, "SSRF through an SDL").
func (s *server) checkPrivateNetwork(r *http.Request, allow, moves bool) error {
	if !s.d.AkashTenants || (!allow && !moves) || principalFrom(r.Context()).IsAdmin() {
		return nil
	}
	if allow {
		return errorf(http.StatusForbidden, "forbidden: allow_private_network: on a hub with Akash tenant self-service only the hub admin lets a credential reach private addresses")
	}
	return errorf(http.StatusForbidden, "forbidden: this credential may reach private addresses (set by the hub admin): only the hub admin changes its endpoint or realm hosts")
}
