package credential

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// ecrHostRE matches private ECR registry hosts: the classic
// <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and the dual-stack
// <account>.dkr-ecr[-fips].<region>.on.aws.
var ecrHostRE = regexp.MustCompile(`^([0-9]{12})\.(?:dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?|dkr-ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.on\.aws)$`)

// regionRE is an AWS region name.
var regionRE = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)

// ECRHost reports whether host (canonical, no port) is a private ECR
// registry and returns its account and region.
func ECRHost(host string) (account, region string, ok bool) {
	m := ecrHostRE.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	region = m[2]
	if region == "" {
		region = m[3]
	}
	return m[1], region, true
}

// ACRHost reports whether host is an Azure Container Registry
// (<name>.azurecr.io and the sovereign clouds' azurecr.cn, azurecr.us).
func ACRHost(host string) bool {
	for _, s := range []string{".azurecr.io", ".azurecr.cn", ".azurecr.us"} {
		if name, ok := strings.CutSuffix(host, s); ok && name != "" && !strings.Contains(name, ".") {
			return true
		}
	}
	return false
}

// GCPHost reports whether host is Google Container Registry (gcr.io,
// <region>.gcr.io) or Artifact Registry (<location>-docker.pkg.dev).
func GCPHost(host string) bool {
	if host == "gcr.io" {
		return true
	}
	if name, ok := strings.CutSuffix(host, ".gcr.io"); ok && name != "" && !strings.Contains(name, ".") {
		return true
	}
	if name, ok := strings.CutSuffix(host, "-docker.pkg.dev"); ok && name != "" && !strings.Contains(name, ".") {
		return true
	}
	return false
}

// hostOf is the host part, without port, of a credential host (which may
// carry a repository prefix).
func hostOf(credHost string) string {
	p, err := imageref.ParsePrefix(credHost)
	if err != nil {
		return ""
	}
	h := p.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return h
}

// InferKind is the kind a credential for host gets when none is given:
// ecr for ECR hosts, acr for Azure, gcp for Google registries, basic
// otherwise.
func InferKind(host string) string {
	h := hostOf(host)
	switch {
	case h == "":
		return KindBasic
	case isECR(h):
		return KindECR
	case ACRHost(h):
		return KindACR
	case GCPHost(h):
		return KindGCP
	}
	return KindBasic
}

func isECR(h string) bool { _, _, ok := ECRHost(h); return ok }

// CheckHost checks that a credential of kind may be used for host: the
// cloud kinds only for their cloud's registries, and an ECR registry only
// with kind ecr (its tokens expire after 12 hours; kind ecr tracks that).
func CheckHost(kind, host string) error {
	h := hostOf(host)
	switch kind {
	case KindECR:
		if !isECR(h) {
			return fmt.Errorf("kind ecr: host %q is not an Amazon ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)", host)
		}
	case KindACR:
		if !ACRHost(h) {
			return fmt.Errorf("kind acr: host %q is not an Azure Container Registry (<name>.azurecr.io)", host)
		}
	case KindGCP:
		if !GCPHost(h) {
			return fmt.Errorf("kind gcp: host %q is not a Google registry (gcr.io, <region>.gcr.io or <location>-docker.pkg.dev)", host)
		}
	case KindBasic, KindToken:
		if isECR(h) {
			return fmt.Errorf("kind %s: host %q is an Amazon ECR registry: use kind ecr (AWS access keys, or a pasted token whose expiry the hub tracks)", kind, host)
		}
	}
	return nil
}
