package tokensvc

import (
	"fmt"
	"strings"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// selectInstall picks the one install of a cluster that serves repo for a
// request. With a verified service-account token the install is chosen by
// the pod's namespace (and service account, when the install names one);
// without one only a single-workspace cluster is served, by the installs'
// allow-lists. Anything ambiguous is refused: guessing could hand one
// tenant's token to another.
func selectInstall(c store.Cluster, installs []store.Install, t target, sa *satoken.Claims) (store.Install, *wire.ErrorReply) {
	var candidates []store.Install
	for _, in := range installs {
		if !in.Enabled || (c.WorkspaceID != "" && in.WorkspaceID != c.WorkspaceID) {
			continue
		}
		if sa != nil && (in.Namespace != sa.Namespace || (in.ServiceAccount != "" && in.ServiceAccount != sa.ServiceAccount)) {
			continue
		}
		if t.allowedBy(in.Repos) {
			candidates = append(candidates, in)
		}
	}
	if sa == nil && c.WorkspaceID == "" {
		return store.Install{}, &wire.ErrorReply{Code: wire.CodeForbidden,
			Error: "cluster " + c.Name + " is shared by several workspaces: requests need the pod's service-account token (tokenAttributes in the kubelet's CredentialProviderConfig)"}
	}
	if sa != nil {
		// An install bound to the exact service account beats one bound to
		// the whole namespace.
		var exact []store.Install
		for _, in := range candidates {
			if in.ServiceAccount == sa.ServiceAccount {
				exact = append(exact, in)
			}
		}
		if len(exact) > 0 {
			candidates = exact
		}
	}
	switch len(candidates) {
	case 1:
		return candidates[0], nil
	case 0:
		where := "cluster " + c.Name
		if sa != nil {
			where = fmt.Sprintf("namespace %s, service account %s on cluster %s", sa.Namespace, sa.ServiceAccount, c.Name)
		}
		return store.Install{}, &wire.ErrorReply{Code: wire.CodeNotFound, Error: "no enabled install for " + where + " allows " + t.String()}
	}
	if c.WorkspaceID == "" {
		// Installs on a shared cluster may belong to other tenants: never
		// name them to a node.
		return store.Install{}, &wire.ErrorReply{Code: wire.CodeAmbiguous,
			Error: fmt.Sprintf("%d installs for namespace %s on cluster %s allow %s: bind them to distinct service accounts or give them disjoint --repo allow-lists",
				len(candidates), sa.Namespace, c.Name, t)}
	}
	names := make([]string, len(candidates))
	for i, in := range candidates {
		names[i] = in.Name
	}
	return store.Install{}, &wire.ErrorReply{Code: wire.CodeAmbiguous,
		Error: fmt.Sprintf("installs %s all allow %s: give them disjoint --repo allow-lists, or bind them to namespaces and use service-account tokens", strings.Join(names, ", "), t)}
}

// target is what a request asks credentials for: a repository, or (the
// docker-credential-helper protocol gives only a server) a whole upstream
// host, or the hub itself.
type target struct {
	repo imageref.Repo // Path empty for a whole host; Host empty for the hub
}

func (t target) String() string {
	switch {
	case t.repo.Host == "":
		return "images through the hub"
	case t.repo.Path == "":
		return "registry " + t.repo.Host
	}
	return t.repo.String()
}

// allowedBy reports whether an allow-list reaches the target: for a host,
// any pattern on that host.
func (t target) allowedBy(patterns []string) bool {
	switch {
	case len(patterns) == 0 || t.repo.Host == "":
		return true
	case t.repo.Path != "":
		return imageref.Allowed(patterns, t.repo)
	}
	for _, s := range patterns {
		if p, err := imageref.ParsePattern(s); err == nil && p.Host == t.repo.Host {
			return true
		}
	}
	return false
}

// coveredBy reports whether a workspace's credentials reach the target.
func (t target) coveredBy(creds []store.Credential) bool {
	switch {
	case t.repo.Host == "":
		return true
	case t.repo.Path != "":
		c, ok := credential.Pick(creds, t.repo)
		return ok && c.Enabled
	}
	for _, c := range creds {
		if p, err := imageref.ParsePrefix(c.Host); err == nil && p.Host == t.repo.Host && c.Enabled {
			return true
		}
	}
	return false
}
