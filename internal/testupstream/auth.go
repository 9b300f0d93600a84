package testupstream

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// authMode selects how the in-process registry authenticates requests.
type authMode int

const (
	authNone authMode = iota
	authBasic
	authToken
)

// tokenService is the service name advertised in Bearer challenges.
const tokenService = "testupstream"

// basicRealm is the realm advertised in Basic challenges.
const basicRealm = "testupstream"

// defaultTokenTTL mirrors Docker Hub's five minute tokens.
const defaultTokenTTL = 5 * time.Minute

// grant is what the token server remembers about one issued token.
type grant struct {
	expires time.Time
	// scopes maps "type:name" (e.g. "repository:foo/bar") to granted actions.
	scopes map[string]map[string]bool
}

// authLayer guards the /v2/ API and, in token mode, serves the token endpoint.
type authLayer struct {
	mode     authMode
	user     string
	password string
	realm    string // advertised Bearer realm
	ttl      time.Duration

	mu     sync.Mutex
	tokens map[string]grant
}

// credsOK compares credentials in constant time.
func (a *authLayer) credsOK(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(a.user))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(a.password))
	return u&p == 1
}

// authorize reports whether req may reach the registry. When it may not, it
// has already written the 401 response.
func (a *authLayer) authorize(w http.ResponseWriter, req *http.Request) bool {
	switch a.mode {
	case authBasic:
		if u, p, ok := req.BasicAuth(); ok && a.credsOK(u, p) {
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", basicRealm))
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return false
	case authToken:
		return a.authorizeBearer(w, req)
	default:
		return true
	}
}

func (a *authLayer) authorizeBearer(w http.ResponseWriter, req *http.Request) bool {
	resource, actions := requiredScope(req)
	scope := ""
	if resource != "" {
		scope = resource + ":" + strings.Join(actions, ",")
	}
	challenge := func(extra string) {
		c := fmt.Sprintf("Bearer realm=%q,service=%q", a.realm, tokenService)
		if scope != "" {
			c += fmt.Sprintf(",scope=%q", scope)
		}
		w.Header().Set("WWW-Authenticate", c+extra)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	}

	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		challenge("")
		return false
	}
	g, ok := a.lookup(tok)
	if !ok {
		challenge(`,error="invalid_token"`)
		return false
	}
	if resource == "" {
		return true // base /v2/ endpoint: any valid token
	}
	for _, act := range actions {
		if !g.scopes[resource][act] && !g.scopes[resource]["*"] {
			challenge(`,error="insufficient_scope"`)
			return false
		}
	}
	return true
}

// lookup returns the grant for a live token.
func (a *authLayer) lookup(tok string) (grant, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.tokens[tok]
	if !ok {
		return grant{}, false
	}
	if time.Now().After(g.expires) {
		delete(a.tokens, tok)
		return grant{}, false
	}
	return g, true
}

// revoke forgets every issued token.
func (a *authLayer) revoke() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.tokens)
}

// tokenResponse is the body of a successful token request. It carries both
// the Docker ("token") and OAuth2 ("access_token") spellings.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	Scope       string `json:"scope,omitempty"`
}

// serveToken implements the Docker token endpoint (GET with Basic auth) and
// its OAuth2 password-grant form (POST).
func (a *authLayer) serveToken(w http.ResponseWriter, req *http.Request) {
	var (
		user, pass string
		haveCreds  bool
		scopes     []string
	)
	switch req.Method {
	case http.MethodGet:
		user, pass, haveCreds = req.BasicAuth()
		scopes = req.URL.Query()["scope"]
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return
		}
		if gt := req.PostForm.Get("grant_type"); gt != "password" {
			writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type",
				fmt.Sprintf("grant_type %q is not supported", gt))
			return
		}
		user, pass = req.PostForm.Get("username"), req.PostForm.Get("password")
		haveCreds = user != "" || pass != ""
		if !haveCreds {
			user, pass, haveCreds = req.BasicAuth()
		}
		scopes = strings.Fields(req.PostForm.Get("scope"))
	default:
		w.Header().Set("Allow", "GET, POST")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	if !haveCreds || !a.credsOK(user, pass) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_grant", "incorrect username or password")
		return
	}

	g := grant{scopes: map[string]map[string]bool{}}
	var granted []string
	for _, raw := range scopes {
		for _, s := range strings.Fields(raw) {
			resource, actions, ok := parseScope(s)
			if !ok {
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("malformed scope %q", s))
				return
			}
			if g.scopes[resource] == nil {
				g.scopes[resource] = map[string]bool{}
			}
			for _, act := range actions {
				g.scopes[resource][act] = true
			}
			granted = append(granted, s)
		}
	}

	tok, err := randomToken()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	now := time.Now()
	g.expires = now.Add(a.ttl)
	a.mu.Lock()
	for k, old := range a.tokens {
		if now.After(old.expires) {
			delete(a.tokens, k)
		}
	}
	a.tokens[tok] = g
	a.mu.Unlock()

	writeJSON(w, http.StatusOK, tokenResponse{
		Token:       tok,
		AccessToken: tok,
		ExpiresIn:   max(1, int(math.Ceil(a.ttl.Seconds()))),
		IssuedAt:    now.UTC().Format(time.RFC3339),
		Scope:       strings.Join(granted, " "),
	})
}

// parseScope splits "repository:name:pull,push" into its resource
// ("repository:name") and actions. The name may itself contain colons
// (a registry host with a port), so the actions follow the last colon.
func parseScope(s string) (resource string, actions []string, ok bool) {
	first := strings.Index(s, ":")
	last := strings.LastIndex(s, ":")
	if first <= 0 || last == first || last == len(s)-1 {
		return "", nil, false
	}
	return s[:last], strings.Split(s[last+1:], ","), true
}

// requiredScope derives the scope a registry API request needs. The base
// endpoint /v2/ needs none.
func requiredScope(req *http.Request) (resource string, actions []string) {
	rest := strings.Trim(strings.TrimPrefix(req.URL.Path, "/v2"), "/")
	if rest == "" {
		return "", nil
	}
	if rest == "_catalog" {
		return "registry:catalog", []string{"*"}
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		actions = []string{"pull"}
	case http.MethodDelete:
		actions = []string{"delete"}
	default:
		actions = []string{"pull", "push"}
	}
	return "repository:" + repoFromPath(rest), actions
}

// repoFromPath extracts the repository name from a /v2/-relative API path
// such as "foo/bar/manifests/latest" or "foo/blobs/uploads/123".
func repoFromPath(rest string) string {
	for _, marker := range []string{"/blobs/uploads", "/blobs/", "/manifests/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, marker); i > 0 {
			return rest[:i]
		}
	}
	return rest
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeRegistryError writes a distribution-spec error body.
func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	type errItem struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Errors []errItem `json:"errors"`
	}{[]errItem{{code, msg}}})
}

// writeOAuthError writes an RFC 6749 style error body, which is also what
// Docker token servers return.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{
		"error":             code,
		"error_description": desc,
		"details":           desc,
	})
}
