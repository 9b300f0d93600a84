package testcloud

import (
	"encoding/base64"
	"strings"

	"encoding/json"
	"fmt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EntraID is a fake of Microsoft Entra ID's token endpoint
// (POST /{tenant}/oauth2/v2.0/token, client credentials grant) for one
// service principal.
type EntraID struct {
	URL                      string
	Tenant, ClientID, Secret string
	Scope                    string
	calls                    atomic.Int64
	mu                       sync.Mutex
	issued                   map[string]time.Time
	fail                     bool
}

// StartEntraID starts the fake for one service principal.
func StartEntraID(t testing.TB, tenant, clientID, secret string) *EntraID {
	t.Helper()
	e := &EntraID{Tenant: tenant, ClientID: clientID, Secret: secret, Scope: "https://management.azure.com/.default", issued: map[string]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// Calls is the number of token requests served.
func (e *EntraID) Calls() int { return int(e.calls.Load()) }

// SetFail makes every token request fail with invalid_client.
func (e *EntraID) SetFail(f bool) { e.mu.Lock(); e.fail = f; e.mu.Unlock() }

// valid reports whether tok is an access token this fake issued.
func (e *EntraID) valid(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.issued[tok]
	return ok && time.Now().Before(exp)
}

func (e *EntraID) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/"+e.Tenant+"/oauth2/v2.0/token" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant not found or bad path.")
		return
	}
	_ = r.ParseForm()
	f := r.PostForm
	e.mu.Lock()
	fail := e.fail
	e.mu.Unlock()
	switch {
	case f.Get("grant_type") != "client_credentials":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: grant type not supported.")
	case f.Get("client_id") != e.ClientID:
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
	case fail || f.Get("client_secret") != e.Secret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.\nTrace ID: x")
	case f.Get("scope") != e.Scope:
		oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.")
	default:
		tok := "aad." + randHex(16)
		e.mu.Lock()
		e.issued[tok] = time.Now().Add(time.Hour)
		e.mu.Unlock()
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": tok})
	}
}

// ACR is a fake Azure Container Registry token service in front of a real
// registry: /oauth2/exchange trades an Entra ID access token for a refresh
// token, /oauth2/token trades that for an access token it obtains from the
// registry's own token endpoint, and everything else is proxied to the
// registry. Start the registry with
// testupstream.WithTokenAuth(user, pass) and WithRealm(acr.Realm()), then
// call Back.
type ACR struct {
	URL     string
	Service string // the registry name the exchange expects ("<name>.azurecr.io")

	aad        *EntraID
	refreshTTL time.Duration

	mu        sync.Mutex
	back      *url.URL
	backUser  string
	backPass  string
	proxy     *httputil.ReverseProxy
	refresh   map[string]time.Time
	exchanges atomic.Int64
	tokens    atomic.Int64
}

// StartACR starts the front for service (the ACR host name), trusting aad.
// refreshTTL is the life of issued refresh tokens (0: 3 hours).
func StartACR(t testing.TB, service string, aad *EntraID, refreshTTL time.Duration) *ACR {
	t.Helper()
	if refreshTTL == 0 {
		refreshTTL = 3 * time.Hour
	}
	a := &ACR{Service: service, aad: aad, refreshTTL: refreshTTL, refresh: map[string]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Realm is the token endpoint the registry must advertise.
func (a *ACR) Realm() string { return a.URL + "/oauth2/token" }

// Back sets the registry behind the front and the credentials of its own
// token endpoint.
func (a *ACR) Back(registryURL, user, pass string) {
	u, _ := url.Parse(registryURL)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.back, a.backUser, a.backPass = u, user, pass
	a.proxy = httputil.NewSingleHostReverseProxy(u)
}

// Exchanges is the number of /oauth2/exchange requests served.
func (a *ACR) Exchanges() int { return int(a.exchanges.Load()) }

// TokenRequests is the number of /oauth2/token requests served.
func (a *ACR) TokenRequests() int { return int(a.tokens.Load()) }

func (a *ACR) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth2/exchange":
		a.serveExchange(w, r)
	case "/oauth2/token":
		a.serveToken(w, r)
	default:
		a.mu.Lock()
		p := a.proxy
		a.mu.Unlock()
		if p == nil {
			http.Error(w, "no registry behind the front", http.StatusBadGateway)
			return
		}
		p.ServeHTTP(w, r)
	}
}

func (a *ACR) serveExchange(w http.ResponseWriter, r *http.Request) {
	a.exchanges.Add(1)
	if r.Method != http.MethodPost {
		acrError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "POST only")
		return
	}
	_ = r.ParseForm()
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "access_token":
		acrError(w, http.StatusBadRequest, "UNSUPPORTED", "grant_type must be access_token")
	case f.Get("service") != a.Service:
		acrError(w, http.StatusBadRequest, "DENIED", "service mismatch")
	case f.Get("tenant") != a.aad.Tenant:
		acrError(w, http.StatusUnauthorized, "UNAUTHORIZED", "tenant mismatch")
	case !a.aad.valid(f.Get("access_token")):
		acrError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid access token")
	default:
		exp := time.Now().Add(a.refreshTTL)
		payload, _ := json.Marshal(map[string]any{"exp": exp.Unix(), "grant_type": "refresh_token", "jti": randHex(8)})
		tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(payload) + "." + randHex(8)
		a.mu.Lock()
		a.refresh[tok] = exp
		a.mu.Unlock()
		writeJSON(w, map[string]string{"refresh_token": tok})
	}
}

func (a *ACR) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		// Anything but the refresh-token grant (the docker GET with Basic
		// credentials PushRandomImage uses) goes to the registry's own
		// token endpoint.
		a.mu.Lock()
		p := a.proxy
		a.mu.Unlock()
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/token"
		p.ServeHTTP(w, r2)
		return
	}
	a.tokens.Add(1)
	_ = r.ParseForm()
	f := r.PostForm
	a.mu.Lock()
	exp, ok := a.refresh[f.Get("refresh_token")]
	back, user, pass := a.back, a.backUser, a.backPass
	a.mu.Unlock()
	if f.Get("grant_type") != "refresh_token" || !ok || time.Now().After(exp) {
		acrError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid refresh token")
		return
	}
	// The access token comes from the registry's own token endpoint, so
	// the registry accepts it.
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass},
		"service": {f.Get("service")}, "scope": {f.Get("scope")}}
	resp, err := http.PostForm(back.String()+"/token", form)
	if err != nil {
		acrError(w, http.StatusBadGateway, "UNAVAILABLE", "registry token endpoint unreachable")
		return
	}
	defer resp.Body.Close()
	var tr struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		acrError(w, http.StatusBadGateway, "UNAVAILABLE", fmt.Sprintf("registry token endpoint answered %d", resp.StatusCode))
		return
	}
	// Like ACR: access_token only, no token field and no expires_in.
	writeJSON(w, map[string]any{"access_token": tr.Token})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func acrError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// PushRandomImage pushes a small random image through the front (with the
// registry's own credentials, as an ACR admin would) and returns it.
func (a *ACR) PushRandomImage(t testing.TB, repo, tag string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(a.URL, "http://")+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	user, pass := a.backUser, a.backPass
	a.mu.Unlock()
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("push %s through the ACR front: %v", ref, err)
	}
	return img
}
