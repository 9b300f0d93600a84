package wire

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
