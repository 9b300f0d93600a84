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
func (s *server) registryInstalls(ctx context.Context, ws string, creds []store.Credential) map[string][]string {
	ins, err := s.d.Store.ListInstalls(ctx, ws)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "list installs for registry view", slog.String("workspace", ws), slog.String("error", err.Error()))
		return nil
	}
	out := make(map[string][]string, len(creds))
	for _, c := range creds {
		prefix, err := imageref.ParsePrefix(c.Host)
		if err != nil {
			continue
		}
		names := []string{}
		for _, in := range ins {
			if reaches(in, prefix) {
				names = append(names, in.Name)
			}
		}
		out[c.Name] = names
	}
	return out
}

// reaches reports whether an install's allow-list overlaps prefix.
func reaches(in store.Install, prefix imageref.Prefix) bool {
	if len(in.Repos) == 0 {
		return true
	}
	for _, r := range in.Repos {
		if p, err := imageref.ParsePattern(r); err == nil && p.Overlaps(prefix) {
			return true
		}
	}
	return false
}
