package api

import (
	"context"
	"log/slog"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// registryInstalls names, per credential, the workspace's installs whose
// allow-list reaches the credential's host (an install that may pull
// everything reaches them all): the installs that disabling, rotating or
// deleting the credential affects. The console shows the count by the
// enable/disable toggle.
//
// Every listing of registries pays for this, and a tenant chooses how many
// credentials, installs and patterns (up to MaxRepos each) there are: each
// pattern is parsed once, not once per credential, and a credential is
// compared only with the patterns of its own host.
func (s *server) registryInstalls(ctx context.Context, ws string, creds []store.Credential) map[string][]string {
	ins, err := s.d.Store.ListInstalls(ctx, ws)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "list installs for registry view", slog.String("workspace", ws), slog.String("error", err.Error()))
		return nil
	}
	reach := make([]installReach, len(ins))
	for i, in := range ins {
		reach[i] = newInstallReach(in)
	}
	out := make(map[string][]string, len(creds))
	for _, c := range creds {
		prefix, err := imageref.ParsePrefix(c.Host)
		if err != nil {
			continue
		}
		names := []string{}
		for i := range reach {
			if reach[i].reaches(prefix) {
				names = append(names, ins[i].Name)
			}
		}
		out[c.Name] = names
	}
	return out
}

// installReach is an install's allow-list parsed once, by host.
type installReach struct {
	all    bool // no allow-list: it may pull everything
	byHost map[string][]imageref.Pattern
}

func newInstallReach(in store.Install) installReach {
	ir := installReach{all: len(in.Repos) == 0, byHost: map[string][]imageref.Pattern{}}
	for _, r := range in.Repos {
		if p, err := imageref.ParsePattern(r); err == nil {
			ir.byHost[p.Host] = append(ir.byHost[p.Host], p)
		}
	}
	return ir
}

// reaches reports whether the allow-list overlaps prefix.
func (ir installReach) reaches(prefix imageref.Prefix) bool {
	if ir.all {
		return true
	}
	for _, p := range ir.byHost[prefix.Host] {
		if p.Overlaps(prefix) {
			return true
		}
	}
	return false
}
