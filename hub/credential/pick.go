package credential

import (
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// Candidates are the credentials whose host/prefix matches repo with the
// longest prefix: the ones a pull of repo can be served with.
func Candidates(creds []store.Credential, repo imageref.Repo) []store.Credential {
	var out []store.Credential
	bestLen := -1
	for _, c := range creds {
		prefix, err := imageref.ParsePrefix(c.Host)
		if err != nil {
			continue
		}
		n, ok := prefix.Match(repo)
		switch {
		case !ok || n < bestLen:
		case n > bestLen:
			out, bestLen = []store.Credential{c}, n
		default:
			out = append(out, c)
		}
	}
	return out
}

// Pick chooses the credential a pull of repo uses among a workspace's
// credentials (in the store's order, by name): the longest matching
// prefix, and among equally long ones the first enabled one, else the
// first. found is false when none matches. A disabled pick is the caller's
// to refuse: a shorter prefix is not a fallback the operator asked for.
func Pick(creds []store.Credential, repo imageref.Repo) (store.Credential, bool) {
	cands := Candidates(creds, repo)
	if len(cands) == 0 {
		return store.Credential{}, false
	}
	for _, c := range cands {
		if c.Enabled {
			return c, true
		}
	}
	return cands[0], true
}
