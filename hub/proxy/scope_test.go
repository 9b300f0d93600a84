package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

type tokenAnswer struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

// /auth/token honours the requested scope: the token it hands out covers
// only the granted repositories, never more than the install allows, and
// a narrowed token never widens.
func TestTokenScope(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "scope-SECRET-pw"))
	for _, repo := range []string{"org/app", "org/app2", "org/other"} {
		up.PushRandomImage(t, repo, "v1", 1, 64)
	}
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web", upstreamHost+"/org/app", upstreamHost+"/org/app2")
	tok := f.token(ws, "web", time.Minute)
	orig, err := f.keys.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}

	getToken := func(t *testing.T, presented string, scopes ...string) tokenAnswer {
		t.Helper()
		q := url.Values{"service": {"pullgate"}, "scope": scopes}
		resp := f.get(http.MethodGet, "/auth/token?"+q.Encode(), presented)
		body := readBody(t, resp)
		var a tokenAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("token request %v: %d %s", scopes, resp.StatusCode, body)
		}
		return a
	}
	manifest := func(name string) string { return "/v2/" + name + "/manifests/v1" }
	bearer := func(t *testing.T, path, tok string) (*http.Response, string) {
		t.Helper()
		resp := f.get(http.MethodGet, path, "", "Authorization", "Bearer "+tok)
		return resp, readBody(t, resp)
	}

	app, app2, other := upstreamHost+"/org/app", upstreamHost+"/org/app2", upstreamHost+"/org/other"
	a := getToken(t, tok, "repository:"+app+":pull,push", "repository:"+other+":pull", "registry:catalog:*", "repository:"+app+":delete")
	if a.Scope != "repository:"+app+":pull" || a.Token == tok || a.AccessToken != a.Token {
		t.Fatalf("granted %q (same token: %v), want pull on %s only", a.Scope, a.Token == tok, app)
	}
	c, err := f.keys.Verify(a.Token)
	if err != nil || !c.Scoped || !slices.Equal(c.Scope, []string{app}) || c.Expiry != orig.Expiry || c.Install != orig.Install || c.Generation != orig.Generation {
		t.Fatalf("narrowed claims %+v (%v), from %+v", c, err, orig)
	}

	// In scope: served. Allowed to the install but out of the token's
	// scope: 401 with a challenge for that scope, so the client asks for
	// it. Outside the allow-list: refused as that.
	if resp, body := bearer(t, manifest(app), a.Token); resp.StatusCode != http.StatusOK {
		t.Fatalf("in scope: %d %s", resp.StatusCode, body)
	}
	resp, body := bearer(t, manifest(app2), a.Token)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="repository:`+app2+`:pull"`) || !strings.Contains(body, "scoped") {
		t.Fatalf("out of scope: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	if resp, body := bearer(t, manifest(other), a.Token); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "allow-list") {
		t.Fatalf("outside the allow-list: %d %s", resp.StatusCode, body)
	}
	// The install token itself still covers its whole allow-list.
	if resp, body := bearer(t, manifest(app2), tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("install token: %d %s", resp.StatusCode, body)
	}

	// A narrowed token never widens, with or without a scope asked for.
	w := getToken(t, a.Token, "repository:"+app2+":pull", "repository:"+app+":pull")
	if w.Scope != "repository:"+app+":pull" {
		t.Fatalf("narrowed token re-scoped to %q", w.Scope)
	}
	if w := getToken(t, a.Token); w.Token != a.Token || w.Scope != "" {
		t.Fatalf("narrowed token without scope: %+v", w)
	}
	// Nothing grantable: a token for nothing (the spec's "fewer actions"),
	// not an error; it opens nothing.
	none := getToken(t, tok, "repository:"+other+":pull", "repository:"+app+":push")
	if none.Scope != "" {
		t.Fatalf("granted %q for nothing grantable", none.Scope)
	}
	if resp, _ := bearer(t, manifest(app), none.Token); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("empty-scope token: %d", resp.StatusCode)
	}

	// Mirror form (containerd's OAuth2 POST, names without a host): the
	// allow-list applies per request with ?ns=.
	form := url.Values{"grant_type": {"password"}, "username": {"x"}, "password": {tok}, "scope": {"repository:org/app:pull repository:org/other:pull"}}
	pr, err := http.Post(f.hub.URL+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	pbody := readBody(t, pr)
	var m tokenAnswer
	if err := json.Unmarshal([]byte(pbody), &m); err != nil || m.Scope != "repository:org/app:pull repository:org/other:pull" {
		t.Fatalf("POST scopes: %d %s", pr.StatusCode, pbody)
	}
	if resp, body := bearer(t, "/v2/org/app/manifests/v1?ns="+upstreamHost, m.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("mirror in scope: %d %s", resp.StatusCode, body)
	}
	if resp, body := bearer(t, "/v2/org/other/manifests/v1?ns="+upstreamHost, m.AccessToken); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mirror outside the allow-list: %d %s", resp.StatusCode, body)
	}
	if resp, body := bearer(t, "/v2/org/app2/manifests/v1?ns="+upstreamHost, m.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("mirror out of scope: %d %s", resp.StatusCode, body)
	}

	// Too many scopes: a clear 400.
	many := make([]string, 40)
	for i := range many {
		many[i] = "repository:org/a:pull"
	}
	q := url.Values{"scope": many}
	if resp := f.get(http.MethodGet, "/auth/token?"+q.Encode(), tok); resp.StatusCode != http.StatusBadRequest || !strings.Contains(readBody(t, resp), "scopes") {
		t.Fatalf("40 scopes: %d", resp.StatusCode)
	}
	// A real client (go-containerregistry: challenge, scoped token, pull).
	if _, err := f.pull(f.ref(upstreamHost, "org/app2", "v1"), tok); err != nil {
		t.Fatalf("pull with the token flow: %v", err)
	}
}

// A scope name with a host (registry.test/org/app) was granted for that
// path-form repository; the same string as a mirror-form path (?ns=) names
// another repository (<ns>/registry.test/org/app), which the narrowed token
// must not cover, even where the allow-list would.
func TestScopeHostNameNotMirrorPath(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "scope-SECRET-pw"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	up.PushRandomImage(t, upstreamHost+"/org/app", "v1", 1, 64)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	app := upstreamHost + "/org/app"
	f.install(ws, "web", app, upstreamHost+"/"+app)
	tok := f.token(ws, "web", time.Minute)

	q := url.Values{"service": {"pullgate"}, "scope": {"repository:" + app + ":pull"}}
	resp := f.get(http.MethodGet, "/auth/token?"+q.Encode(), tok)
	body := readBody(t, resp)
	var a tokenAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Scope != "repository:"+app+":pull" {
		t.Fatalf("token request: %d %s", resp.StatusCode, body)
	}
	get := func(path string) (*http.Response, string) {
		resp := f.get(http.MethodGet, path, "", "Authorization", "Bearer "+a.Token)
		return resp, readBody(t, resp)
	}
	if resp, body := get("/v2/" + app + "/manifests/v1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("path form in scope: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/v2/" + app + "/manifests/v1?ns=" + upstreamHost); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("mirror form %s?ns=%s (repository %s/%s) with a token scoped to %s: %d %s, want 401",
			app, upstreamHost, upstreamHost, app, app, resp.StatusCode, body)
	}
	// The install token itself covers it (the allow-list does).
	resp = f.get(http.MethodGet, "/v2/"+app+"/manifests/v1?ns="+upstreamHost, "", "Authorization", "Bearer "+tok)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("install token, mirror form: %d %s", resp.StatusCode, body)
	}
}
