package agentclient

import (
	"strings"

	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// dockerHub names Docker Hub's registry; the agent answers with it for
// images of any of its aliases and for images without a registry host.
const dockerHub = wire.DockerHub

// RegistryOf is the registry an image (or a bare registry host, as the
// docker-credential-helper protocol asks) names, lower-cased: the first
// component when it is a host (docker's rule: it has a '.' or a ':', or
// is "localhost"), else Docker Hub.
func RegistryOf(image string) string {
	if imageref.RegistryOnly(image) {
		return strings.ToLower(image)
	}
	first, _, ok := strings.Cut(image, "/")
	if !ok || !imageref.LooksLikeHost(first) {
		return dockerHub
	}
	return strings.ToLower(first)
}

// Answers reports whether an answer keyed by registry is for image: the
// registry the image names, or Docker Hub's canonical name for an image
// of one of its aliases. The helper never hands the runtime a token keyed
// by any other registry (the runtime would send it there).
func Answers(image, registry string) bool {
	want := RegistryOf(image)
	return registry == want || (registry == dockerHub && wire.IsDockerHubAlias(want))
}
