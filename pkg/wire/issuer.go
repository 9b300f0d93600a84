package wire

import "strings"

// MaxIssuerLen bounds a service-account issuer URL.
const MaxIssuerLen = 512

// ValidIssuer reports whether s can be a cluster's service-account issuer:
// an https:// URL of at most MaxIssuerLen bytes. The agent checks what it
// discovers, the hub what a node proposes and what an operator approves.
func ValidIssuer(s string) bool {
	return strings.HasPrefix(s, "https://") && len(s) <= MaxIssuerLen
}
