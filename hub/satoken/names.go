package satoken

import "strings"

// maxDetail bounds attacker-controlled strings quoted in error messages.
const maxDetail = 64

// detail truncates s to maxDetail bytes for use (with %q) in an error message.
func detail(s string) string {
	if len(s) > maxDetail {
		return strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}

// isDNS1123Label reports whether s is an RFC 1123 label as Kubernetes
// validates it (namespace names): at most 63 characters of [a-z0-9-],
// starting and ending with an alphanumeric character.
func isDNS1123Label(s string) bool {
	return len(s) <= 63 && isAlnumDash(s)
}

// isAlnumDash reports whether s is non-empty, made of [a-z0-9-], and starts
// and ends with an alphanumeric character.
func isAlnumDash(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(s)-1:
		default:
			return false
		}
	}
	return true
}

// isDNS1123Subdomain reports whether s is an RFC 1123 subdomain as Kubernetes
// validates it (service account, pod and node names): at most 253
// characters, dot-separated labels of [a-z0-9-] that start and end with an
// alphanumeric character. Like Kubernetes' own check, it does not limit the
// length of each label (pod names may have labels longer than 63).
func isDNS1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !isAlnumDash(label) {
			return false
		}
	}
	return true
}
