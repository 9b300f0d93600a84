package imageref

import (
	"fmt"
	"net"
	"strings"
)

// reservedSuffixes are DNS names that only ever resolve inside a site
// (RFC 6761 localhost, mDNS .local, RFC 8375 home.arpa, the ICANN-reserved
// .internal) or by local convention.
var reservedSuffixes = []string{"localhost", "localdomain", "local", "internal", "home.arpa", "lan", "intranet"}

// CheckPublicHost refuses a canonical host that names the hub's own
// network rather than a registry on the internet: IP literals of any kind
// (loopback, RFC 1918, link-local, CGNAT, ULA; tenants name registries by
// DNS name), localhost and *.localhost, other site-local names (.local,
// .internal, home.arpa, ...), and single-label names, which resolve
// through the hub's search domains. It is for tenant input (SDL imports);
// the dial-time address check (pkg/netguard) still covers names that
// resolve to such addresses.
func CheckPublicHost(canonical string) error {
	if canonical == DockerHub {
		return nil
	}
	host := canonical
	if h, _, err := net.SplitHostPort(canonical); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if net.ParseIP(host) != nil {
		return fmt.Errorf("registry host %s is an IP address: name the registry by its public DNS name", canonical)
	}
	for _, s := range reservedSuffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return fmt.Errorf("registry host %s is a local name (%s), not a public registry", canonical, s)
		}
	}
	if !strings.Contains(host, ".") {
		return fmt.Errorf("registry host %s is a single-label name, not a public registry", canonical)
	}
	return nil
}
