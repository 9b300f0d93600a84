package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// The proxy picks a pull's credential by the longest matching host/prefix
// (credential.Pick). Two things an operator adding credentials or installs
// cannot see from one command are checked here: a second credential for
// the same prefix (Pick would choose one by name, and a wrong password
// behind the winner fails every pull), and a more specific prefix that
// takes over pulls existing installs make through another credential.

// checkNewPrefix refuses a credential whose prefix a credential of the
// workspace already has, and returns warnings when the new prefix
// re-routes pulls of existing installs.
func (s *server) checkNewPrefix(ctx context.Context, ws, name string, prefix imageref.Prefix) ([]string, error) {
	creds, err := s.d.Store.ListCredentials(ctx, ws)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Name == name }) {
		return nil, nil // the store refuses the name
	}
	var before []store.Credential // the most specific ones covering prefix
	bestLen := -1
	for _, c := range creds {
		p, err := imageref.ParsePrefix(c.Host)
		if err != nil {
			continue
		}
		if p == prefix {
			return nil, errorf(http.StatusConflict, "registry credential %q of workspace %q already has host %s; a second one for the same host would leave the choice to its name: change that one (registry update %s) or delete it first",
				c.Name, ws, c.Host, c.Name)
		}
		n, ok := p.Match(imageref.Repo(prefix))
		if !ok || p.Path == prefix.Path {
			continue
		}
		switch {
		case n > bestLen:
			before, bestLen = []store.Credential{c}, n
		case n == bestLen:
			before = append(before, c)
		}
	}
	if len(before) == 0 {
		return nil, nil
	}
	ins, err := s.d.Store.ListInstalls(ctx, ws)
	if err != nil {
		return nil, err
	}
	var affected []string
	for _, in := range ins {
		if len(in.Repos) == 0 {
			affected = append(affected, in.Name+" (all repositories)")
			continue
		}
		var hit []string
		for _, r := range in.Repos {
			if p, err := imageref.ParsePattern(r); err == nil && p.Overlaps(prefix) {
				hit = append(hit, r)
			}
		}
		if len(hit) > 0 {
			affected = append(affected, in.Name+" ("+strings.Join(hit, ", ")+")")
		}
	}
	if len(affected) == 0 {
		return nil, nil
	}
	olds := make([]string, len(before))
	for i, c := range before {
		olds[i] = fmt.Sprintf("%q (%s)", c.Name, c.Host)
	}
	return []string{fmt.Sprintf("pulls under %s now use registry %q instead of %s, for installs %s",
		prefix, name, strings.Join(olds, ", "), strings.Join(affected, ", "))}, nil
}

// repoWarnings names the allow-list patterns that no registry credential
// of the workspace covers: pulls they allow are refused ("no registry
// credential in this workspace covers ..."), so they are most likely a
// typo of the host or repository.
func (s *server) repoWarnings(ctx context.Context, ws string, repos []string) []string {
	if len(repos) == 0 {
		return nil
	}
	creds, err := s.d.Store.ListCredentials(ctx, ws)
	if err != nil {
		s.log.Warn("list credentials for install warnings", "workspace", ws, "err", err)
		return nil
	}
	var prefixes []imageref.Prefix
	hosts := make([]string, 0, len(creds))
	for _, c := range creds {
		if p, err := imageref.ParsePrefix(c.Host); err == nil {
			prefixes = append(prefixes, p)
			hosts = append(hosts, c.Host)
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	known := "it has none"
	if len(hosts) > 0 {
		known = "it has " + strings.Join(hosts, ", ")
	}
	var out []string
	for _, r := range repos {
		p, err := imageref.ParsePattern(r)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(prefixes, p.Overlaps) {
			out = append(out, fmt.Sprintf("repository pattern %s: no registry credential of workspace %q covers it (%s); its pulls are refused: a typo?", r, ws, known))
		}
	}
	return out
}
