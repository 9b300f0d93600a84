// Package imageref normalises upstream registry hosts and repository names
// the way pullgate stores and matches them. Parsing is go-containerregistry's
// (pkg/name); this package adds the stricter rules a proxy needs (no ".."
// path tricks, Docker Hub aliases folded into one canonical host) and the
// matching of credential prefixes and install allow-list patterns.
package imageref

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pullgate/pullgate/pkg/wire"
)

// DockerHub is the canonical host of Docker Hub.
const DockerHub = "docker.io"

// dockerHubUpstream is where Docker Hub's registry API answers.
const dockerHubUpstream = "registry-1.docker.io"

// hostnameRE is a DNS name: dot-separated labels of letters, digits and
// inner hyphens. Compiled on first use, not at init: the credential
// helper, exec'd by the kubelet for every pull, links this package.
var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$`)
})

// component is one path component of a repository (distribution's
// grammar), compiled on first use as hostnameRE is.
var component = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
})

// CanonicalHost normalises a registry host as a user may write it
// ("https://index.docker.io/v1/", "GHCR.io", "127.0.0.1:5000") to the form
// pullgate stores ("docker.io", "ghcr.io", "127.0.0.1:5000"): Host with
// its default rules.
func CanonicalHost(h string) (string, error) { return Host(h) }

// clip bounds what an error quotes of its input: host names and paths come
// from anonymous clients and tenants, and errors reach clients and logs
// (found by FuzzCanonicalHost: a 480-byte host gave a 2 KB error).
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// UpstreamAddr is the address the registry API of a canonical host answers at.
func UpstreamAddr(canonical string) string {
	if canonical == DockerHub {
		return dockerHubUpstream
	}
	return canonical
}

// Repo is a repository on an upstream registry.
type Repo struct {
	Host string // canonical host
	Path string // repository path: "library/nginx", "org/app"
}

// String is "host/path", the form allow-list patterns and prefixes match.
func (r Repo) String() string { return r.Host + "/" + r.Path }

// Scope is the registry token scope for pulling the repository.
func (r Repo) Scope() string { return "repository:" + r.Path + ":pull" }

// ParseRepo validates a repository path on host. On Docker Hub a single
// component means an official image ("nginx" → "library/nginx").
func ParseRepo(host, path string) (Repo, error) {
	h, err := CanonicalHost(host)
	if err != nil {
		return Repo{}, err
	}
	if err := checkPath(path); err != nil {
		return Repo{}, fmt.Errorf("repository %q: %w", clip(path), err)
	}
	if h == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
		// Checked again with the prefix: what is accepted must parse again
		// (found by FuzzParseRepo).
		if err := checkPath(path); err != nil {
			return Repo{}, fmt.Errorf("repository %q: %w", clip(path), err)
		}
	}
	return Repo{Host: h, Path: path}, nil
}

// ParseImage splits a full image reference "host/path[:tag|@digest]" into
// its repository and reference (tag or digest, "latest" when absent). The
// host must be explicit unless it is Docker Hub ("nginx", "org/app").
func ParseImage(s string) (Repo, string, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		// ggcr's message repeats the whole input: not passed on.
		return Repo{}, "", fmt.Errorf("image %q: not a valid image reference", clip(s))
	}
	ctx := ref.Context()
	r, err := ParseRepo(ctx.RegistryStr(), ctx.RepositoryStr())
	if err != nil {
		return Repo{}, "", fmt.Errorf("image %q: %w", clip(s), err)
	}
	return r, ref.Identifier(), nil
}

func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty")
	}
	if len(p) > 255 {
		return fmt.Errorf("longer than 255 characters")
	}
	for _, c := range strings.Split(p, "/") {
		if !component().MatchString(c) {
			return fmt.Errorf("path component %q: must be lowercase letters and digits separated by '.', '_', '__' or '-'", clip(c))
		}
	}
	return nil
}

// Prefix is a credential scope: a host and an optional repository prefix
// ("ghcr.io/org-a"). The longest matching prefix picks the credential.
type Prefix struct {
	Host string
	Path string // may be empty: the whole host
}

func (p Prefix) String() string {
	if p.Path == "" {
		return p.Host
	}
	return p.Host + "/" + p.Path
}

// ParsePrefix parses "host[/path-prefix]".
func ParsePrefix(s string) (Prefix, error) {
	s = strings.TrimSpace(s)
	rest := ""
	hostPart := s
	if strings.HasPrefix(strings.ToLower(hostPart), "http://") {
		return Prefix{}, fmt.Errorf("registry %q: a host has no scheme; for a plain-HTTP registry give its address as the endpoint (http://...)", clip(s))
	}
	if strings.HasPrefix(strings.ToLower(hostPart), "https://") {
		hostPart = hostPart[len("https://"):]
	}
	if i := strings.IndexByte(hostPart, '/'); i >= 0 {
		hostPart, rest = hostPart[:i], strings.Trim(hostPart[i:], "/")
	}
	if wire.IsDockerHubAlias(strings.ToLower(hostPart)) && (rest == "v1" || rest == "v2") {
		rest = ""
	}
	h, err := CanonicalHost(hostPart)
	if err != nil {
		return Prefix{}, err
	}
	if rest == "" {
		return Prefix{Host: h}, nil
	}
	if err := checkPath(rest); err != nil {
		return Prefix{}, fmt.Errorf("registry %q: repository prefix: %w", clip(s), err)
	}
	return Prefix{Host: h, Path: rest}, nil
}

// Match reports whether r lies under p, and how specific the match is (the
// prefix length) so that callers can pick the longest.
func (p Prefix) Match(r Repo) (int, bool) {
	if p.Host != r.Host {
		return 0, false
	}
	if p.Path == "" {
		return 0, true
	}
	if r.Path == p.Path || strings.HasPrefix(r.Path, p.Path+"/") {
		return len(p.Path), true
	}
	return 0, false
}

// Allowed applies an install's allow-list to repo; an empty list allows
// everything (the workspace's credentials are the limit then).
func Allowed(patterns []string, repo Repo) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, s := range patterns {
		if p, err := ParsePattern(s); err == nil && p.Match(repo) {
			return true
		}
	}
	return false
}

// Pattern is an install allow-list entry over "host/path": '*' matches
// within one path component, "**" matches any number of components
// ("ghcr.io/org/*", "ghcr.io/org/**", "docker.io/library/nginx").
type Pattern struct {
	Host  string
	parts []string
}

// ParsePattern validates an allow-list pattern.
func ParsePattern(s string) (Pattern, error) {
	i := strings.IndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return Pattern{}, fmt.Errorf("repository pattern %q: want host/repository, e.g. ghcr.io/org/*", clip(s))
	}
	h, err := CanonicalHost(s[:i])
	if err != nil {
		return Pattern{}, fmt.Errorf("repository pattern %q: %w", clip(s), err)
	}
	parts := strings.Split(s[i+1:], "/")
	for _, c := range parts {
		if c == "**" {
			continue
		}
		if !component().MatchString(strings.ReplaceAll(c, "*", "a")) {
			return Pattern{}, fmt.Errorf("repository pattern %q: component %q is not a repository name or glob", clip(s), clip(c))
		}
	}
	if h == DockerHub && len(parts) == 1 && !strings.Contains(parts[0], "*") {
		parts = []string{"library", parts[0]}
	}
	// A pattern that could only match repositories longer than the limit
	// is a mistake: say so rather than allow nothing (found by fuzzing).
	if path := strings.Join(parts, "/"); len(strings.NewReplacer("**", "", "*", "").Replace(path)) > 255 {
		return Pattern{}, fmt.Errorf("repository pattern %q: longer than 255 characters", clip(s))
	}
	return Pattern{Host: h, parts: parts}, nil
}

func (p Pattern) String() string { return p.Host + "/" + strings.Join(p.parts, "/") }

// Match reports whether r is allowed by the pattern.
func (p Pattern) Match(r Repo) bool {
	return p.Host == r.Host && matchParts(p.parts, strings.Split(r.Path, "/"))
}

// matchParts matches components against pattern parts where "**" stands
// for any number of components. Like globComponent it is the classic
// two-pointer wildcard match: it backtracks only to the latest "**", so it
// runs in O(len(pat)·len(comps)) whatever the pattern.
func matchParts(pat, comps []string) bool {
	return wildcard(len(pat), len(comps),
		func(i int) bool { return pat[i] == "**" },
		func(i, j int) bool { return globComponent(pat[i], comps[j]) })
}

// globComponent matches one component where '*' is any run of characters.
func globComponent(pat, s string) bool {
	return wildcard(len(pat), len(s),
		func(i int) bool { return pat[i] == '*' },
		func(i, j int) bool { return pat[i] == s[j] })
}

// wildcard matches a pattern of n items against m items: star(i) says
// pattern item i matches any run of items, eq(i, j) whether pattern item i
// matches item j.
func wildcard(n, m int, star func(int) bool, eq func(int, int) bool) bool {
	i, j := 0, 0
	lastStar, lastJ := -1, 0
	for j < m {
		switch {
		case i < n && star(i):
			lastStar, lastJ = i, j
			i++
		case i < n && eq(i, j):
			i++
			j++
		case lastStar >= 0:
			lastJ++
			i, j = lastStar+1, lastJ
		default:
			return false
		}
	}
	for i < n && star(i) {
		i++
	}
	return i == n
}

// Overlaps reports whether some repository the pattern allows lies under
// pre: whether a credential scoped to pre can serve any pull the pattern
// allows. Used to warn about patterns no credential covers.
func (p Pattern) Overlaps(pre Prefix) bool {
	if p.Host != pre.Host {
		return false
	}
	if pre.Path == "" {
		return true
	}
	comps := strings.Split(pre.Path, "/")
	for i, c := range comps {
		switch {
		case i >= len(p.parts):
			// The pattern only allows repositories shorter than pre.
			return false
		case p.parts[i] == "**":
			// It absorbs the rest of pre; what follows matches some
			// deeper repository.
			return true
		case !globComponent(p.parts[i], c):
			return false
		}
	}
	// The pattern's remaining parts match some repository under pre (each
	// glob component matches some name, "**" matches none).
	return true
}
