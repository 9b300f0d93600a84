package imageref

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pullgate/pullgate/pkg/wire"
)

// HostOption adjusts what Host accepts. Without options Host is the
// registry-host rule pullgate stores hosts by (CanonicalHost).
type HostOption func(*hostRules)

type hostRules struct {
	label     string   // what errors call the input
	serverURL bool     // docker tools' server URL: any scheme, anything after the host dropped
	paths     []string // paths allowed (and dropped) after the host
	dockerHub bool     // Docker Hub's aliases become docker.io
	dnsName   bool     // the name must be a DNS name or an IP, not only a URI authority
	exact     bool     // the input must already be in canonical form
	lowScheme bool     // only a lower-case scheme is dropped
	ofImage   bool     // the input is an image reference or a bare registry host
}

// HostLabel names the input in errors ("hub host", "mirror host").
func HostLabel(l string) HostOption { return func(r *hostRules) { r.label = l } }

// HostPaths sets the paths accepted after the host; the default is Docker
// Hub's "/v1/" and "/v2/" forms and "/".
func HostPaths(p ...string) HostOption { return func(r *hostRules) { r.paths = p } }

// KeepAliases keeps Docker Hub's other names as they are.
func KeepAliases() HostOption { return func(r *hostRules) { r.dockerHub = false } }

// AnyAuthority accepts any RFC 3986 authority with a valid port, not only
// DNS names and IP addresses (a hub address as the operator wrote it).
func AnyAuthority() HostOption { return func(r *hostRules) { r.dnsName = false } }

// LowerCaseScheme drops only a lower-case "https://" or "http://" (an
// upper-case one stays and is refused as a path).
func LowerCaseScheme() HostOption { return func(r *hostRules) { r.lowScheme = true } }

// OfImage takes an image reference ("ghcr.io/org/app:1", "nginx") or a
// bare registry host (RegistryOnly, as the docker-credential-helper
// protocol asks) and gives the canonical host it names.
func OfImage() HostOption { return func(r *hostRules) { r.ofImage = true } }

// Exact refuses input that is not already in the canonical form, so that
// the result may name a file (containerd's hosts.d directories).
func Exact() HostOption { return func(r *hostRules) { r.exact = true } }

// ServerURL reads a server URL as docker tools pass it ("https://index.docker.io/v1/",
// "ghcr.io", "http://127.0.0.1:5000"): any scheme, anything after the host
// dropped, aliases kept, and the host must pass docker's rule for a
// registry (RegistryOnly) only.
func ServerURL() HostOption {
	return func(r *hostRules) { r.serverURL, r.label, r.dockerHub = true, "server URL", false }
}

// Host normalises a registry host as a user, tool or tenant may write it
// ("https://index.docker.io/v1/", "GHCR.io", "127.0.0.1:5000") to the form
// pullgate stores ("docker.io", "ghcr.io", "127.0.0.1:5000"). Errors never
// echo user info and quote at most a clipped part of the input.
func Host(h string, opts ...HostOption) (string, error) {
	r := hostRules{label: "registry host", paths: []string{"/", "/v1/", "/v1", "/v2/", "/v2"}, dockerHub: true, dnsName: true}
	for _, o := range opts {
		o(&r)
	}
	if r.serverURL {
		return serverURLHost(h, r)
	}
	if r.ofImage {
		r.ofImage = false
		if RegistryOnly(h) {
			if c, err := host(h, r); err == nil {
				return c, nil
			}
		}
		repo, _, err := ParseImage(h)
		return repo.Host, err
	}
	return host(h, r)
}

// LooksLikeHost is docker's rule for the first component of an image
// name: a registry host has a '.' or a ':' (a port), or is "localhost".
func LooksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

func host(h string, r hostRules) (string, error) {
	if strings.Contains(h, "@") {
		// Never echo it: user info may hold a password.
		return "", fmt.Errorf("%s must not contain user info ('@')", r.label)
	}
	raw, orig := h, clip(h)
	h = strings.TrimSpace(h)
	if !r.lowScheme {
		h = strings.ToLower(h)
	}
	h = strings.TrimPrefix(h, "https://")
	h = strings.TrimPrefix(h, "http://")
	h = strings.ToLower(h)
	if i := strings.IndexByte(h, '/'); i >= 0 {
		if rest := h[i:]; !slices.Contains(r.paths, rest) {
			return "", fmt.Errorf("%s %q: unexpected path %q", r.label, orig, clip(rest))
		}
		h = h[:i]
	}
	if h == "" {
		return "", fmt.Errorf("%s %q: empty", r.label, orig)
	}
	if r.dockerHub && wire.IsDockerHubAlias(h) {
		h = DockerHub
	} else if err := checkAuthority(h, r); err != nil {
		return "", fmt.Errorf("%s %q: %w", r.label, orig, err)
	}
	if r.exact && h != raw {
		return "", fmt.Errorf("%s %q: not in canonical form (%s)", r.label, orig, h)
	}
	return h, nil
}

// checkAuthority is ggcr's rule for a registry (an RFC 3986 authority),
// a port from 1 to 65535, and, unless AnyAuthority, a DNS name or IP.
func checkAuthority(h string, r hostRules) error {
	if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
		// ggcr's message repeats the whole input: not passed on.
		return errors.New("not a valid host[:port]")
	}
	hostname := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be 1-65535")
		}
		hostname = hh
	}
	if r.dnsName && net.ParseIP(strings.Trim(hostname, "[]")) == nil && !hostnameRE().MatchString(hostname) {
		return errors.New("not a host name")
	}
	return nil
}

func serverURLHost(serverURL string, r hostRules) (string, error) {
	s := strings.TrimSpace(serverURL)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		// Found by fuzzing: "https://\f." gave the host "\f.".
		return "", fmt.Errorf("%s: the host has spaces or control characters", r.label)
	}
	if strings.Contains(s, "@") {
		return "", fmt.Errorf("%s must not contain user info", r.label)
	}
	if !RegistryOnly(s) {
		// Quote the host part only (clipped): the rest of the URL may
		// hold user info or a query with secrets. 48 bytes: %q may double
		// them (quotes, backslashes), and the error stays under 200 bytes.
		if len(s) > 48 {
			s = s[:48] + "…"
		}
		return "", fmt.Errorf("%s: %q is not a registry host (want e.g. ghcr.io or https://registry.corp:5000)", r.label, s)
	}
	return s, nil
}

// RegistryOnly reports whether a TokenRequest's Image names a whole
// registry instead of a repository. The docker-credential-helper protocol
// gives the helper only a server URL, so it asks for the bare registry host
// ("ghcr.io", "127.0.0.1:5000", "localhost:5000"); the kubelet always sends
// a repository ("ghcr.io/org/app", "docker.io/library/nginx").
//
// A registry host is one component (no '/' or '@') that contains a '.' or
// is "localhost", optionally followed by ":<port>" — docker's rule for the
// first component of a reference. "nginx" and "nginx:1.27" are not
// registries.
func RegistryOnly(image string) bool {
	// Spaces, control characters and non-ASCII never belong in a host
	// (fuzzing found "\f." taken for one).
	if image == "" || strings.ContainsFunc(image, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' || r == '@' }) {
		return false
	}
	host := image
	if h, port, ok := strings.Cut(image, ":"); ok {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false // a tag, not a port
		}
		host = h
	}
	return host == "localhost" || strings.Contains(host, ".")
}
