package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAPITokenLifecycle(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "operator")

	// The admin has no tokens of its own and names a user that exists.
	if code, body := e.do("POST", "/api/v1/tokens", `{}`); code != 400 || !strings.Contains(body, "name the user") {
		t.Errorf("admin token without user: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/workspaces/a/members", `{"user":"admin","role":"owner"}`); code != 400 || !strings.Contains(body, "reserved") {
		t.Errorf("user named admin: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/tokens", `{"user":"nobody"}`); code != 404 || !strings.Contains(body, "member add") {
		t.Errorf("token for unknown user: %d %s", code, body)
	}
	for _, exp := range []string{"5s", "x", "-1h"} {
		if code, _ := e.do("POST", "/api/v1/tokens", `{"user":"alice","expires_in":"`+exp+`"}`); code != 400 {
			t.Errorf("expires_in %q: %d", exp, code)
		}
	}
	var nt NewAPIToken
	e.must("POST", "/api/v1/tokens", `{"user":"alice","description":"laptop"}`, 201, &nt)
	if !strings.HasPrefix(nt.Token, APITokenPrefix) || len(nt.Token) < 40 || nt.State != "active" || nt.ExpiresAt == nil ||
		!nt.ExpiresAt.Equal(e.now.Add(DefaultAPITokenTTL)) {
		t.Fatalf("new token: %+v", nt)
	}
	// whoami with the token.
	rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: nt.Token})
	var pv PrincipalView
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &pv) != nil || pv.Kind != "user" || pv.Name != "alice" ||
		len(pv.Workspaces) != 1 || pv.Workspaces[0] != (WorkspaceRole{"a", "operator"}) || pv.TokenID != nt.ID {
		t.Fatalf("whoami: %d %s", rec.Code, rec.Body)
	}
	// Alice creates a second token herself (expiring no later than the
	// one she uses: TestTokenCannotOutliveItsParent); she cannot make one
	// for bob.
	e.addMember("a", "bob", "viewer")
	rec = e.send(req{method: "POST", path: "/api/v1/tokens", bearer: nt.Token, body: `{"expires_in":"720h"}`})
	var own NewAPIToken
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &own) != nil || own.User != "alice" || own.ExpiresAt == nil || !own.ExpiresAt.Equal(e.now.Add(720*time.Hour)) {
		t.Fatalf("own token: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "POST", path: "/api/v1/tokens", bearer: nt.Token, body: `{"user":"bob"}`}); rec.Code != 403 {
		t.Errorf("alice makes bob's token: %d %s", rec.Code, rec.Body)
	}
	bobTok, bobID := e.userToken("bob", "")
	// Lists: alice sees her two, the admin all three; never a token.
	rec = e.send(req{method: "GET", path: "/api/v1/tokens", bearer: nt.Token})
	var l APITokenList
	if json.Unmarshal(rec.Body.Bytes(), &l) != nil || len(l.Tokens) != 2 || strings.Contains(rec.Body.String(), nt.Token) {
		t.Errorf("alice's list: %s", rec.Body)
	}
	e.must("GET", "/api/v1/tokens", "", 200, &l)
	if len(l.Tokens) != 3 {
		t.Errorf("admin's list: %+v", l)
	}
	// Alice cannot revoke bob's token (404, as if none); bob can.
	if rec := e.send(req{method: "DELETE", path: "/api/v1/tokens/" + bobID, bearer: nt.Token}); rec.Code != 404 {
		t.Errorf("alice revokes bob's token: %d", rec.Code)
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: bobTok}); rec.Code != 200 {
		t.Fatalf("bob after refused revoke: %d", rec.Code)
	}
	if rec := e.send(req{method: "DELETE", path: "/api/v1/tokens/" + bobID, bearer: bobTok}); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"revoked"`) {
		t.Errorf("bob revokes his token: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: bobTok}); rec.Code != 401 {
		t.Errorf("revoked token: %d", rec.Code)
	}
	// Expiry: a token that expires in an hour stops working after it.
	shortTok, _ := e.userToken("alice", "1h")
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: shortTok}); rec.Code != 200 {
		t.Fatalf("fresh token: %d", rec.Code)
	}
	e.now = e.now.Add(time.Hour)
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: shortTok}); rec.Code != 401 {
		t.Errorf("expired token: %d", rec.Code)
	}
	// Look-alike tokens are refused.
	for _, bad := range []string{nt.Token[:len(nt.Token)-1], nt.Token + "x", strings.TrimPrefix(nt.Token, APITokenPrefix), "pgu_"} {
		if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: bad}); rec.Code != 401 {
			t.Errorf("token %q: %d", bad, rec.Code)
		}
	}
	e.assertShownOnce(nt.Token)
	e.assertShownOnce(own.Token)
	if strings.Contains(e.logs.String(), bobTok) {
		t.Error("log holds a token")
	}
}

func TestSessionLogin(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "operator")
	tok, tokID := e.userToken("alice", "")

	rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`})
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var sv SessionView
	if err := json.Unmarshal(rec.Body.Bytes(), &sv); err != nil {
		t.Fatal(err)
	}
	if sv.Principal.Kind != "user" || sv.Principal.Name != "alice" || len(sv.Principal.Workspaces) != 1 || sv.CSRFToken == "" ||
		!sv.ExpiresAt.Equal(e.now.Add(DefaultSessionTTL)) {
		t.Errorf("session: %+v", sv)
	}
	sc := rec.Header().Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=pgs_", "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie over plain HTTP is Secure: %q", sc)
	}
	rec = e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`, tls: true})
	if sc := rec.Header().Get("Set-Cookie"); !strings.Contains(sc, "; Secure") {
		t.Errorf("Set-Cookie over TLS is not Secure: %q", sc)
	}

	// Bad tokens: 401 with a clear message, no cookie.
	for _, bad := range []string{"", "nope", tok + "x", testAdmin + "x"} {
		rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + bad + `"}`})
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "not a valid admin or API token") || rec.Header().Get("Set-Cookie") != "" {
			t.Errorf("login with %q: %d %s %q", bad, rec.Code, rec.Body, rec.Header().Get("Set-Cookie"))
		}
	}
	// Login CSRF: a cross-site page cannot sign the browser in.
	for _, h := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`, header: h})
		if rec.Code != 403 || rec.Header().Get("Set-Cookie") != "" {
			t.Errorf("cross-site login %v: %d", h, rec.Code)
		}
	}

	cookie, csrf := e.login(tok)
	// GET /session answers the same session; the cookie works on every route.
	rec = e.send(req{method: "GET", path: "/api/v1/session", cookie: cookie})
	var got SessionView
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.CSRFToken != csrf || got.Principal.Name != "alice" {
		t.Fatalf("GET session: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/session"}); rec.Code != 401 {
		t.Errorf("GET session without cookie: %d", rec.Code)
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/workspaces/a/registries", cookie: cookie}); rec.Code != 200 {
		t.Errorf("read with cookie: %d %s", rec.Code, rec.Body)
	}

	// CSRF: a change with the cookie needs the session's token.
	create := `{"name":"web","all_repos":true}`
	for name, r := range map[string]req{
		"no csrf":          {cookie: cookie},
		"wrong csrf":       {cookie: cookie, csrf: csrf[:len(csrf)-2] + "xx"},
		"other csrf":       {cookie: cookie, csrf: csfrOf(t, e, tok)},
		"cross-site":       {cookie: cookie, csrf: csrf, header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site":        {cookie: cookie, csrf: csrf, header: map[string]string{"Sec-Fetch-Site": "same-site"}},
		"foreign origin":   {cookie: cookie, csrf: csrf, header: map[string]string{"Origin": "https://evil.example"}},
		"malformed origin": {cookie: cookie, csrf: csrf, header: map[string]string{"Origin": "null"}},
	} {
		r.method, r.path, r.body = "POST", "/api/v1/workspaces/a/installs", create
		if rec := e.send(r); rec.Code != 403 {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	e.must("GET", "/api/v1/workspaces/a/installs/web", "", 404, nil)
	// The right token, same origin: done. A bearer request needs none.
	r := req{method: "POST", path: "/api/v1/workspaces/a/installs", body: create, cookie: cookie, csrf: csrf, header: map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}}
	if rec := e.send(r); rec.Code != 201 {
		t.Fatalf("create with csrf: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "POST", path: "/api/v1/workspaces/a/installs/web/disable", bearer: tok}); rec.Code != 200 {
		t.Errorf("bearer change without csrf: %d %s", rec.Code, rec.Body)
	}

	// Logout needs the CSRF token too, then ends the session.
	if rec := e.send(req{method: "DELETE", path: "/api/v1/session", cookie: cookie}); rec.Code != 403 {
		t.Errorf("logout without csrf: %d", rec.Code)
	}
	rec = e.send(req{method: "DELETE", path: "/api/v1/session", cookie: cookie, csrf: csrf})
	if rec.Code != 204 || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/workspaces/a/installs", cookie: cookie}); rec.Code != 401 {
		t.Errorf("cookie after logout: %d", rec.Code)
	}

	// Revoking the token ends its sessions.
	cookie, _ = e.login(tok)
	e.must("DELETE", "/api/v1/tokens/"+tokID, "", 200, nil)
	if rec := e.send(req{method: "GET", path: "/api/v1/session", cookie: cookie}); rec.Code != 401 {
		t.Errorf("session of a revoked token: %d", rec.Code)
	}
	// A revoked token cannot open one either.
	if rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`}); rec.Code != 401 {
		t.Errorf("login with a revoked token: %d", rec.Code)
	}
	e.assertShownOnce(tok)
	e.assertNoLeak(cookie)

	// Deleting the user ends its sessions and tokens.
	e.addMember("a", "bob", "viewer")
	bobTok, _ := e.userToken("bob", "")
	bobCookie, _ := e.login(bobTok)
	e.must("DELETE", "/api/v1/users/bob", "", 204, nil)
	if rec := e.send(req{method: "GET", path: "/api/v1/session", cookie: bobCookie}); rec.Code != 401 {
		t.Errorf("session of a deleted user: %d", rec.Code)
	}
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: bobTok}); rec.Code != 401 {
		t.Errorf("token of a deleted user: %d", rec.Code)
	}
	if code, _ := e.do("GET", "/api/v1/workspaces/a/members", ""); code != 200 {
		t.Errorf("members after user delete: %d", code)
	}
}

// csfrOf is the CSRF token of another session of the same token.
func csfrOf(t *testing.T, e *testEnv, tok string) string {
	t.Helper()
	_, csrf := e.login(tok)
	return csrf
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "viewer")
	tok, _ := e.userToken("alice", "24h")
	get := func(cookie string) int {
		return e.send(req{method: "GET", path: "/api/v1/workspaces/a", cookie: cookie}).Code
	}

	// Idle: an hour without a request ends it; requests keep it alive.
	cookie, _ := e.login(tok)
	start := e.now
	for i := 1; i <= 3; i++ {
		e.now = start.Add(time.Duration(i) * 50 * time.Minute)
		if c := get(cookie); c != 200 {
			t.Fatalf("after %v of use: %d", e.now.Sub(start), c)
		}
	}
	e.now = e.now.Add(DefaultSessionIdle)
	if c := get(cookie); c != 401 {
		t.Errorf("idle for %v: %d", DefaultSessionIdle, c)
	}

	// Absolute: 12 hours however busy.
	cookie, _ = e.login(tok)
	start = e.now
	for e.now.Sub(start) < DefaultSessionTTL-30*time.Minute {
		e.now = e.now.Add(30 * time.Minute)
		if c := get(cookie); c != 200 {
			t.Fatalf("after %v: %d", e.now.Sub(start), c)
		}
	}
	e.now = start.Add(DefaultSessionTTL)
	if c := get(cookie); c != 401 {
		t.Errorf("at the absolute expiry: %d", c)
	}

	// The token expiring ends the session with it.
	e.now = start
	short, _ := e.userToken("alice", "10m")
	cookie, _ = e.login(short)
	e.now = e.now.Add(10 * time.Minute)
	if c := get(cookie); c != 401 {
		t.Errorf("session of an expired token: %d", c)
	}

	// Admin sessions end when the admin token changes (a hub restarted
	// with a new token on the same database).
	adminCookie, _ := e.login(testAdmin)
	if c := get(adminCookie); c != 200 {
		t.Fatalf("admin session: %d", c)
	}
	e2 := &testEnv{t: t, st: e.st, dbPath: e.dbPath, logs: e.logs, now: e.now}
	e2.h = New(Deps{Store: e.st, AdminToken: "another-admin-token", Now: func() time.Time { return e2.now }})
	if c := e2.send(req{method: "GET", path: "/api/v1/workspaces/a", cookie: adminCookie}).Code; c != 401 {
		t.Errorf("admin session under a new admin token: %d", c)
	}
	// Another replica with the same admin token shares it.
	e3 := &testEnv{t: t, now: e.now}
	e3.h = New(Deps{Store: e.st, AdminToken: testAdmin, Now: func() time.Time { return e3.now }})
	if c := e3.send(req{method: "GET", path: "/api/v1/workspaces/a", cookie: adminCookie}).Code; c != 200 {
		t.Errorf("admin session on another replica: %d", c)
	}
}

// touchCounter counts the session writes of the idle clock.
type touchCounter struct {
	Store
	touches atomic.Int32
}

func (c *touchCounter) TouchSession(ctx context.Context, id string, t time.Time) error {
	c.touches.Add(1)
	return c.Store.TouchSession(ctx, id, t)
}

// The console polls every 2 s: the idle clock (minute resolution) must not
// cost a database write per request.
func TestSessionTouchOncePerMinute(t *testing.T) {
	var tc *touchCounter
	e := newEnv(t, func(d *Deps) { tc = &touchCounter{Store: d.Store}; d.Store = tc })
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "viewer")
	tok, _ := e.userToken("alice", "24h")
	cookie, _ := e.login(tok)
	start := e.now
	for i := range 30 { // a minute of 2 s polls
		e.now = start.Add(time.Duration(i) * 2 * time.Second)
		if c := e.send(req{method: "GET", path: "/api/v1/workspaces/a", cookie: cookie}).Code; c != 200 {
			t.Fatalf("poll %d: %d", i, c)
		}
	}
	if n := tc.touches.Load(); n != 0 {
		t.Errorf("%d session writes within the first minute, want 0", n)
	}
	e.now = start.Add(61 * time.Second)
	e.send(req{method: "GET", path: "/api/v1/workspaces/a", cookie: cookie})
	if n := tc.touches.Load(); n != 1 {
		t.Errorf("%d session writes after a minute, want 1", n)
	}
}
