package wire

import "strings"

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

// DockerHub is Docker Hub's canonical registry name.
const DockerHub = "docker.io"

// IsDockerHubAlias reports whether host (lower-case) is one of the names
// Docker Hub's registry goes by.
func IsDockerHubAlias(host string) bool {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return true
	}
	return false
}
