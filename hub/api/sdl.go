package api

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/pullgate/pullgate/hub/sdl"
)

// importSDL turns an Akash SDL's (or provider manifest's) credentials into
// the workspace's registry credentials and one install bound to the
// cluster and namespace. Everything is checked before anything is stored;
// a refused import changes nothing.
func (s *server) importSDL(w http.ResponseWriter, r *http.Request) error {
	var req SDLImportRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	wsName := r.PathValue("ws")
	if (req.SDL == "") == (len(req.Manifest) == 0) {
		return badRequest("give the SDL (sdl, YAML text) or a provider manifest (manifest, JSON), exactly one")
	}
	if err := checkName("cluster", req.Cluster); err != nil {
		return err
	}
	if req.Namespace == "" {
		return badRequest("namespace: required (the namespace the deployment runs in)")
	}
	if !dnsLabel.MatchString(req.Namespace) {
		return badRequest("namespace %q: not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)", req.Namespace)
	}
	if req.Install != "" {
		if err := checkName("install", req.Install); err != nil {
			return err
		}
	}
	var (
		doc *sdl.Document
		err error
	)
	if req.SDL != "" {
		doc, err = sdl.Parse([]byte(req.SDL))
	} else {
		doc, err = sdl.ParseManifest(req.Manifest)
	}
	if err != nil {
		return sdlErr(err)
	}
	hub := req.HubHost
	if hub == "" && req.Rewrite {
		hub = s.hubHost(r)
	}
	// Rewrite first: a document that cannot be rewritten is refused before
	// anything is stored.
	var rewritten []byte
	var rewriteWarnings []string
	if req.Rewrite {
		if rewritten, rewriteWarnings, err = doc.Rewrite(hub); err != nil {
			return badRequest("rewrite: %v", err)
		}
	}
	if _, err := s.d.Store.GetWorkspace(r.Context(), wsName); err != nil {
		return err
	}
	if err := s.checkInstallCluster(r.Context(), wsName, req.Cluster, req.Namespace); err != nil {
		return err
	}
	im := &sdl.Importer{Store: s.d.Store, Sealer: s.d.Sealer, Now: s.now}
	rep, err := im.Import(r.Context(), sdl.Params{Workspace: wsName, Cluster: req.Cluster, Namespace: req.Namespace,
		Install: req.Install, DryRun: req.DryRun, HubHost: hub, CredentialScope: req.CredentialScope}, doc)
	if err != nil {
		return sdlErr(err)
	}
	rep.Warnings = append(rep.Warnings, rewriteWarnings...)
	if in, ok := rep.ChangedInstall(); ok && rep.Install.Action == sdl.Updated {
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(r.Context(), in) })
	}
	writeJSON(w, http.StatusOK, SDLImport{Report: *rep, Rewritten: string(rewritten)})
	return nil
}

// hubHost is the host an SDL's rewritten images name: the public URL's,
// or the request's without one.
func (s *server) hubHost(r *http.Request) string {
	if u, err := url.Parse(s.d.PublicURL); err == nil && u.Host != "" {
		return u.Host
	}
	return r.Host
}

// sdlErr maps the importer's errors: an invalid document is 400, a clash
// with the workspace's state 409; store errors keep their own mapping.
func sdlErr(err error) error {
	var se *sdl.Error
	var ce *sdl.ConflictError
	switch {
	case errors.As(err, &se):
		return badRequest("%s", se.Error())
	case errors.As(err, &ce):
		return errorf(http.StatusConflict, "%s", ce.Msg)
	}
	return err
}
