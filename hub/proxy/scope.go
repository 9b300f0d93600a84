package proxy

import (
	"net/http"
	"slices"
	"strings"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// maxScopes bounds the scopes of one token request.
const maxScopes = 32

// requestedScopes collects the scope parameters of a token request: GET
// query parameters (docker sends one per scope), the OAuth2 form's
// space-separated list (containerd).
func requestedScopes(r *http.Request) []string {
	var raw []string
	raw = append(raw, r.URL.Query()["scope"]...)
	if r.Method == http.MethodPost {
		raw = append(raw, r.PostForm["scope"]...)
	}
	var out []string
	for _, s := range raw {
		out = append(out, strings.Fields(s)...)
	}
	return out
}

// grantScopes decides what a token request gets (Docker token spec: a
// token server grants the requested actions the caller has, and may grant
// fewer or none rather than fail). The hub grants only "pull" (or "*",
// granted as pull) on "repository" resources:
//
//   - a name with an upstream host (the path-prefix form,
//     registry.test/team/app) is granted when the install's allow-list
//     allows that repository;
//   - a name without one (the mirror form, team/app: the host comes per
//     request in ?ns=) is granted, and the allow-list decides each request;
//   - everything else (push, delete, other resource types such as
//     registry:catalog:*, names that are not repository names, names
//     outside the allow-list, names outside the presenting token's own
//     scope) is left out of the grant, silently, as the spec allows.
//
// It returns the granted repository names, in request order without
// repeats, and the granted scopes as the OAuth2 "scope" field spells them.
func grantScopes(claims token.Claims, inst store.Install, requested []string) (names []string, granted string, aerr *apiError) {
	if len(requested) > maxScopes {
		return nil, "", errCode(http.StatusBadRequest, "UNSUPPORTED", "token request: more than 32 scopes")
	}
	var scopes []string
	for _, s := range requested {
		name, ok := pullScope(s)
		if !ok || slices.Contains(names, name) || !nameAllowed(inst, name) {
			continue
		}
		if claims.Scoped && !slices.Contains(claims.Scope, name) {
			// A narrowed token never widens.
			continue
		}
		names = append(names, name)
		scopes = append(scopes, "repository:"+name+":pull")
	}
	return names, strings.Join(scopes, " "), nil
}

// pullScope parses "repository:<name>:<actions>" (the name may hold a
// host's port, so the actions follow the last colon) and reports the name
// when the actions ask for pull.
func pullScope(s string) (string, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok || typ != "repository" {
		return "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", false
	}
	name, actions := rest[:i], rest[i+1:]
	if len(name) > 512 || !slices.ContainsFunc(strings.Split(actions, ","), func(a string) bool { return a == "pull" || a == "*" }) {
		return "", false
	}
	return name, true
}

// nameAllowed applies the install's allow-list to a scope's repository
// name, as parseRoute would read it in a path.
func nameAllowed(inst store.Install, name string) bool {
	if host, path, ok := scopeHost(name); ok {
		repo, err := imageref.ParseRepo(host, path)
		return err == nil && imageref.Allowed(inst.Repos, repo)
	}
	// Mirror form: a valid repository path; the host comes per request.
	_, err := imageref.ParseRepo("registry.invalid", name)
	return err == nil
}

// scopeHost splits a scope's repository name that starts with an upstream
// host (the path-prefix form) into host and path.
func scopeHost(name string) (host, path string, ok bool) {
	host, path, ok = strings.Cut(name, "/")
	return host, path, ok && imageref.LooksLikeHost(host)
}

// outOfScope refuses a request for a repository a narrowed token does not
// cover, with a challenge for that repository's scope, so that the client
// fetches a token for it. It runs after the allow-list check: a
// repository the install may not pull is refused as that, not as this.
func (p *Proxy) outOfScope(w http.ResponseWriter, r *http.Request, claims token.Claims, rt route) *apiError {
	if !claims.Scoped {
		return nil
	}
	// A name with a host was granted as that path-form repository
	// (nameAllowed): as a mirror-form path (?ns=) it names another one.
	_, _, hosted := scopeHost(rt.name)
	if slices.Contains(claims.Scope, rt.name) && !(rt.mirror && hosted) {
		return nil
	}
	scope := "repository:" + rt.name + ":pull"
	p.challenge(w, r, scope)
	return errUnauthorized("scope", "install token is scoped to other repositories: fetch one for "+quote(scope)+" from "+tokenPath).because("out_of_scope")
}
