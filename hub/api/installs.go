package api

import (
	"net/http"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// MaxRepos bounds an install's allow-list; maxPatternLen one pattern (a
// host plus a 255-character repository path).
const (
	MaxRepos      = 256
	maxPatternLen = 512
)

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
	setTarget(r, "install", req.Name)
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
	if err := checkAkashScope(req.Akash, req.Cluster != "" || req.Namespace != ""); err != nil {
		return err
	}
	if req.ServiceAccount != "" && req.Namespace == "" && req.Akash == "" {
		return badRequest("service_account: needs a namespace (or akash)")
	}
	if err := s.checkInstallCluster(r.Context(), r.PathValue("ws"), req.Cluster, req.Namespace); err != nil {
		return err
	}
	in, err := s.d.Store.CreateInstall(r.Context(), r.PathValue("ws"), store.Install{
		Name:           req.Name,
		Cluster:        req.Cluster,
		Namespace:      req.Namespace,
		ServiceAccount: req.ServiceAccount,
		Akash:          req.Akash,
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
	if req.Repos == nil && !req.AllRepos && !binding && req.Akash == nil {
		return badRequest("nothing to update: give repos, all_repos, cluster, namespace, service_account or akash")
	}
	if req.Akash != nil {
		if err := checkAkashScope(*req.Akash, deref(req.Cluster) != "" || deref(req.Namespace) != ""); err != nil {
			return err
		}
	}
	if req.AllRepos && req.Repos != nil && len(*req.Repos) > 0 {
		return badRequest("repos and all_repos exclude each other: give allow-list patterns or all_repos: true")
	}
	if !req.AllRepos && req.Repos != nil && len(*req.Repos) == 0 {
		return badRequest("repos: an empty allow-list would allow everything: say all_repos: true for that")
	}
	u := store.InstallUpdate{Cluster: req.Cluster, Namespace: req.Namespace, ServiceAccount: req.ServiceAccount, Akash: req.Akash}
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
	if in.ClusterID != old.ClusterID || in.Akash != old.Akash {
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

// checkAkashScope checks an install's akash field: "", "all" or a dseq,
// and never together with a cluster or namespace of its own.
func checkAkashScope(akash string, bound bool) error {
	if !store.ValidAkashScope(akash) {
		return badRequest("akash %q: want \"all\" or a deployment sequence number (dseq)", akash)
	}
	if akash != "" && bound {
		return badRequest("akash excludes cluster and namespace: an Akash install is served in its workspace's lease namespaces")
	}
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
