package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Regression tests of the adversarial review of per-workspace access: each
// is an attack that worked before its fix.

// A workspace deleted and created again under its name is a new tenant:
// its members must not read the pull audit of the old one (audit events
// name their workspace, they do not reference it).
func TestAuditOfDeletedNamesake(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	if err := e.st.AppendAudit(ctx, []store.AuditEvent{{Time: time.Now().Add(-time.Hour), Workspace: "a", Install: "old", Repository: "old-tenant/app"}}); err != nil {
		t.Fatal(err)
	}
	e.must("DELETE", "/api/v1/workspaces/a", "", 200, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "mallory", "owner")
	tok, _ := e.userToken("mallory", "")
	if err := e.st.AppendAudit(ctx, []store.AuditEvent{{Workspace: "a", Install: "new", Repository: "new-tenant/app"}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/audit?workspace=a", "/api/v1/audit?install=old"} {
		rec := e.send(req{method: "GET", path: path, bearer: tok})
		var got AuditEvents
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		for _, ev := range got.Events {
			if ev.Install == "old" {
				t.Errorf("GET %s: the new workspace's member reads the deleted namesake's event %+v", path, ev)
			}
		}
		if path == "/api/v1/audit" && (len(got.Events) != 1 || got.Events[0].Install != "new") {
			t.Errorf("GET %s: %+v, want the new workspace's event only", path, got.Events)
		}
	}
	// The admin still reads the whole trail.
	var all AuditEvents
	e.must("GET", "/api/v1/audit?workspace=a", "", 200, &all)
	if len(all.Events) != 2 {
		t.Errorf("admin: %d events, want 2", len(all.Events))
	}
}

// A stolen token that expires soon, or a stolen console session, must not
// mint itself a token that outlives it: a new token expires no later than
// the token its request (or session) was made with.
func TestTokenCannotOutliveItsParent(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "operator")
	short, _ := e.userToken("alice", "1h")
	forever, _ := e.userToken("alice", "0")
	parentEnd := e.now.Add(time.Hour)
	cookie, csrf := e.login(short)
	via := map[string]func(body string) req{
		"bearer": func(b string) req { return req{method: "POST", path: "/api/v1/tokens", body: b, bearer: short} },
		"session": func(b string) req {
			return req{method: "POST", path: "/api/v1/tokens", body: b, cookie: cookie, csrf: csrf}
		},
	}
	for name, mk := range via {
		for _, c := range []struct {
			body string
			code int
			exp  time.Time // zero: never
		}{
			{`{"expires_in":"0"}`, 400, time.Time{}},
			{`{"expires_in":"2h"}`, 400, time.Time{}},
			{`{"expires_in":"30m"}`, 201, e.now.Add(30 * time.Minute)},
			{`{}`, 201, parentEnd},
		} {
			before, err := e.st.ListAPITokens(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			rec := e.send(mk(c.body))
			if rec.Code != c.code {
				t.Errorf("%s %s: %d %s, want %d", name, c.body, rec.Code, rec.Body, c.code)
				continue
			}
			after, _ := e.st.ListAPITokens(context.Background(), "")
			if c.code != 201 {
				if len(after) != len(before) {
					t.Errorf("%s %s: refused but %d tokens now, %d before", name, c.body, len(after), len(before))
				}
				continue
			}
			var nt NewAPIToken
			if err := json.Unmarshal(rec.Body.Bytes(), &nt); err != nil {
				t.Fatal(err)
			}
			if nt.ExpiresAt == nil || !nt.ExpiresAt.Equal(c.exp) {
				t.Errorf("%s %s: expires %v, want %v", name, c.body, nt.ExpiresAt, c.exp)
			}
		}
	}
	// A token that never expires, and the admin, create any lifetime.
	for _, tok := range []string{forever, testAdmin} {
		body := `{"expires_in":"0"}`
		if tok == testAdmin {
			body = `{"user":"alice","expires_in":"0"}`
		}
		rec := e.send(req{method: "POST", path: "/api/v1/tokens", body: body, bearer: tok})
		var nt NewAPIToken
		if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &nt) != nil || nt.ExpiresAt != nil {
			t.Errorf("never-expiring token from %.8s...: %d %s", tok, rec.Code, rec.Body)
		}
	}
}

// A user who pastes a token where its id belongs (`token revoke pgu_...`)
// must not have it echoed nor written to the activity log.
func TestSecretInPathNeverLogged(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "owner")
	tok, _ := e.userToken("alice", "")
	for _, r := range []req{
		{method: "DELETE", path: "/api/v1/tokens/" + tok, bearer: tok},
		{method: "DELETE", path: "/api/v1/tokens/" + tok, bearer: testAdmin},
		{method: "DELETE", path: "/api/v1/workspaces/a/members/" + tok, bearer: tok},
		{method: "DELETE", path: "/api/v1/users/" + tok, bearer: testAdmin},
	} {
		rec := e.send(r)
		if rec.Code/100 != 4 {
			t.Errorf("%s %.40s...: %d %s, want a 4xx", r.method, r.path, rec.Code, rec.Body)
		}
	}
	// A name that merely starts like a secret is left alone.
	if code, body := e.do("DELETE", "/api/v1/workspaces/a/registries/pgu_mirror", ""); code != 404 || !strings.Contains(body, "pgu_mirror") {
		t.Errorf("registry pgu_mirror: %d %s", code, body)
	}
	// Still usable: nothing was revoked.
	if rec := e.send(req{method: "GET", path: "/api/v1/whoami", bearer: tok}); rec.Code != 200 {
		t.Errorf("token after the refusals: %d", rec.Code)
	}
	as, err := e.st.QueryActivity(context.Background(), store.ActivityQuery{})
	if err != nil {
		t.Fatal(err)
	}
	redacted := 0
	for _, a := range as {
		if a.Target == "[redacted]" {
			redacted++
		}
	}
	if redacted != 4 {
		t.Errorf("%d redacted activity rows, want 4: %+v", redacted, as)
	}
	e.assertShownOnce(tok)
}

// countingStore counts the store reads that tell workspaces and clusters
// apart.
type countingStore struct {
	Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) count() {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
}

func (c *countingStore) GetWorkspace(ctx context.Context, name string) (store.Workspace, error) {
	c.count()
	return c.Store.GetWorkspace(ctx, name)
}

func (c *countingStore) WorkspaceByID(ctx context.Context, id string) (store.Workspace, error) {
	c.count()
	return c.Store.WorkspaceByID(ctx, id)
}

func (c *countingStore) GetCluster(ctx context.Context, name string) (store.Cluster, error) {
	c.count()
	return c.Store.GetCluster(ctx, name)
}

// Another workspace's cluster costs the store exactly the reads of a
// missing one, and answers the same: no timing oracle for its existence.
func TestForeignClusterLikeMissing(t *testing.T) {
	var cs *countingStore
	e := newEnv(t, func(d *Deps) { cs = &countingStore{Store: d.Store}; d.Store = cs })
	for _, ws := range []string{"a", "b"} {
		e.must("POST", "/api/v1/workspaces", `{"name":"`+ws+`"}`, 201, nil)
	}
	e.must("POST", "/api/v1/clusters", `{"name":"a-edge","workspace":"a"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/b/installs", `{"name":"web","all_repos":true}`, 201, nil)
	e.addMember("b", "bob", "owner")
	tok, _ := e.userToken("bob", "")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/clusters/%s", ""},
		{"GET", "/api/v1/clusters/%s/nodes", ""},
		{"DELETE", "/api/v1/clusters/%s", ""},
		{"POST", "/api/v1/clusters/%s/join-token", ""},
		{"POST", "/api/v1/workspaces/b/installs", `{"name":"x","all_repos":true,"cluster":"%s","namespace":"web"}`},
		{"PATCH", "/api/v1/workspaces/b/installs/web", `{"cluster":"%s","namespace":"web"}`},
	} {
		var reads [2]int
		var bodies [2]string
		var codes [2]int
		for i, name := range []string{"a-edge", "nothere"} {
			r := req{method: c.method, path: c.path, body: c.body, bearer: tok}
			if strings.Contains(r.path, "%s") {
				r.path = fmt.Sprintf(r.path, name)
			} else {
				r.body = fmt.Sprintf(r.body, name)
			}
			cs.mu.Lock()
			cs.reads = 0
			cs.mu.Unlock()
			rec := e.send(r)
			cs.mu.Lock()
			reads[i] = cs.reads
			cs.mu.Unlock()
			codes[i], bodies[i] = rec.Code, strings.ReplaceAll(rec.Body.String(), name, "NAME")
		}
		if reads[0] != reads[1] || codes[0] != codes[1] || bodies[0] != bodies[1] {
			t.Errorf("%s %s: foreign cluster %d reads, %d %s; missing one %d reads, %d %s",
				c.method, c.path, reads[0], codes[0], bodies[0], reads[1], codes[1], bodies[1])
		}
	}
}

// A token description is printed by the admin's `token list`: a user
// must not put terminal escape sequences or fake lines into it.
func TestTokenDescriptionNoControlCharacters(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "viewer")
	tok, _ := e.userToken("alice", "")
	for _, c := range []struct {
		desc string
		code int
	}{
		{`\u001b]0;pwned\u0007\u001b[2J`, 400},
		{`ci\nalice  tok_fake  active`, 400},
		{`laptop\r`, 400},
		{`\u0085next line`, 400},
		{`laptop \u202egnp.exe`, 400},
		{`ad\u200bmin`, 400},
		{`café laptop (ünicode) <b>`, 201},
	} {
		before, _ := e.st.ListAPITokens(context.Background(), "")
		rec := e.send(req{method: "POST", path: "/api/v1/tokens", body: `{"description":"` + c.desc + `"}`, bearer: tok})
		after, _ := e.st.ListAPITokens(context.Background(), "")
		if rec.Code != c.code || (c.code == 400 && len(after) != len(before)) {
			t.Errorf("description %q: %d %s, want %d", c.desc, rec.Code, rec.Body, c.code)
		}
	}
}

// Session fixation by cookie tossing: a page on a sibling subdomain plants
// its own session cookie for the hub's host, so that the victim works (and
// types registry secrets) in the attacker's workspace. Over https the
// cookie is __Host- (browsers refuse it from another host and without
// Secure); a request with two session cookies has none.
func TestSessionCookieTossing(t *testing.T) {
	e := newEnv(t)
	for _, ws := range []string{"a", "evil"} {
		e.must("POST", "/api/v1/workspaces", `{"name":"`+ws+`"}`, 201, nil)
	}
	e.addMember("a", "victim", "owner")
	e.addMember("evil", "mallory", "owner")
	vTok, _ := e.userToken("victim", "")
	mTok, _ := e.userToken("mallory", "")
	loginTLS := func(tok string) string {
		rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`, tls: true})
		for _, c := range rec.Result().Cookies() {
			if c.Name == SessionCookieSecure && c.Secure && c.Path == "/" && c.Domain == "" && c.HttpOnly {
				return c.Value
			}
		}
		t.Fatalf("sign-in over TLS: %d, Set-Cookie %q: want a Secure %s cookie, Path=/, no Domain", rec.Code, rec.Header().Values("Set-Cookie"), SessionCookieSecure)
		return ""
	}
	victim, mallory := loginTLS(vTok), loginTLS(mTok)
	mPlain, _ := e.login(mTok)
	whoami := func(tls bool, cookies ...string) (int, string) {
		r := req{method: "GET", path: "/api/v1/whoami", tls: tls, header: map[string]string{"Cookie": strings.Join(cookies, "; ")}}
		rec := e.send(r)
		var pv PrincipalView
		_ = json.Unmarshal(rec.Body.Bytes(), &pv)
		return rec.Code, pv.Name
	}
	for _, c := range []struct {
		name    string
		tls     bool
		cookies []string
		code    int
		who     string
	}{
		{"victim's own", true, []string{SessionCookieSecure + "=" + victim}, 200, "victim"},
		{"tossed plain cookie over https", true, []string{SessionCookie + "=" + mallory}, 401, ""},
		{"tossed plain cookie beside the victim's", true, []string{SessionCookie + "=" + mPlain, SessionCookieSecure + "=" + victim}, 200, "victim"},
		{"two cookies over http", false, []string{SessionCookie + "=" + mPlain, SessionCookie + "=" + victim}, 401, ""},
	} {
		code, who := whoami(c.tls, c.cookies...)
		if code != c.code || who != c.who {
			t.Errorf("%s: %d as %q, want %d as %q", c.name, code, who, c.code, c.who)
		}
	}
}

// A member cannot fill the shared database with API tokens.
func TestAPITokenCountBounded(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "alice", "viewer")
	tok, _ := e.userToken("alice", "0")
	var last NewAPIToken
	for i := 1; i < MaxActiveAPITokens; i++ {
		rec := e.send(req{method: "POST", path: "/api/v1/tokens", body: `{}`, bearer: tok})
		if rec.Code != 201 {
			t.Fatalf("token %d: %d %s", i+1, rec.Code, rec.Body)
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &last)
	}
	rec := e.send(req{method: "POST", path: "/api/v1/tokens", body: `{}`, bearer: tok})
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "revoke unused ones") {
		t.Fatalf("token %d: %d %s, want 409", MaxActiveAPITokens+1, rec.Code, rec.Body)
	}
	// Revoking one makes room; the admin is bound the same way for alice.
	if rec := e.send(req{method: "DELETE", path: "/api/v1/tokens/" + last.ID, bearer: tok}); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	e.must("POST", "/api/v1/tokens", `{"user":"alice"}`, 201, nil)
	e.must("POST", "/api/v1/tokens", `{"user":"alice"}`, 409, nil)
}

// A live console session follows its user's role: a downgraded operator
// loses operator rights on the next request, a removed member everything
// of the workspace (memberships are read with each request).
func TestLiveSessionFollowsRoleChanges(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "olga", "owner")
	e.addMember("a", "alice", "operator")
	owner, _ := e.userToken("olga", "")
	tok, _ := e.userToken("alice", "")
	cookie, csrf := e.login(tok)
	n := 0
	create := func() int {
		n++
		return e.send(req{method: "POST", path: "/api/v1/workspaces/a/installs", body: fmt.Sprintf(`{"name":"i%d","all_repos":true}`, n), cookie: cookie, csrf: csrf}).Code
	}
	read := func() int {
		return e.send(req{method: "GET", path: "/api/v1/workspaces/a/installs", cookie: cookie}).Code
	}
	role := func(r string) {
		if rec := e.send(req{method: "PATCH", path: "/api/v1/workspaces/a/members/alice", body: `{"role":"` + r + `"}`, bearer: owner}); rec.Code != 200 {
			t.Fatalf("set role %s: %d %s", r, rec.Code, rec.Body)
		}
	}
	steps := []struct {
		name         string
		change       func()
		create, read int
	}{
		{"operator", func() {}, 201, 200},
		{"downgraded to viewer", func() { role("viewer") }, 403, 200},
		{"operator again", func() { role("operator") }, 201, 200},
		{"removed", func() {
			e.send(req{method: "DELETE", path: "/api/v1/workspaces/a/members/alice", bearer: owner})
		}, 404, 404},
	}
	for _, s := range steps {
		s.change()
		if c, r := create(), read(); c != s.create || r != s.read {
			t.Errorf("%s: create %d, read %d; want %d, %d", s.name, c, r, s.create, s.read)
		}
	}
}
