package tokensvc

import (
	"fmt"
	"strings"

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
func selectInstall(c store.Cluster, installs []store.Install, repo imageref.Repo, sa *satoken.Claims) (store.Install, *wire.ErrorReply) {
	var candidates []store.Install
	for _, in := range installs {
		if !in.Enabled || (c.WorkspaceID != "" && in.WorkspaceID != c.WorkspaceID) {
			continue
		}
		if sa != nil && (in.Namespace != sa.Namespace || (in.ServiceAccount != "" && in.ServiceAccount != sa.ServiceAccount)) {
			continue
		}
		if allowed(in.Repos, repo) {
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
		return store.Install{}, &wire.ErrorReply{Code: wire.CodeNotFound, Error: "no enabled install for " + where + " allows " + repo.String()}
	}
	names := make([]string, len(candidates))
	for i, in := range candidates {
		names[i] = in.Name
	}
	return store.Install{}, &wire.ErrorReply{Code: wire.CodeAmbiguous,
		Error: fmt.Sprintf("installs %s all allow %s: give them disjoint --repo allow-lists, or bind them to namespaces and use service-account tokens", strings.Join(names, ", "), repo)}
}

func allowed(patterns []string, repo imageref.Repo) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, s := range patterns {
		if p, err := imageref.ParsePattern(s); err == nil && p.Match(repo) {
			return true
		}
	}
	return false
}
