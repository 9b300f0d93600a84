package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
)

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	cases := []struct {
		name, auth, path string
		want             int
	}{
		{"no header", "", "/api/v1/workspaces", 401},
		{"wrong token", "Bearer nope", "/api/v1/workspaces", 401},
		{"token prefix", "Bearer " + testAdmin[:len(testAdmin)-1], "/api/v1/workspaces", 401},
		{"token with suffix", "Bearer " + testAdmin + "x", "/api/v1/workspaces", 401},
		{"basic scheme", "Basic " + testAdmin, "/api/v1/workspaces", 401},
		{"no scheme", testAdmin, "/api/v1/workspaces", 401},
		{"empty bearer", "Bearer ", "/api/v1/workspaces", 401},
		{"unknown route without token", "", "/api/v1/nope", 401},
		{"audit without token", "", "/api/v1/audit", 401},
		{"right token", "Bearer " + testAdmin, "/api/v1/workspaces", 200},
		{"scheme is case-insensitive", "bearer " + testAdmin, "/api/v1/workspaces", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.doAuth("GET", c.path, "", c.auth)
			if code != c.want {
				t.Fatalf("status %d, want %d: %s", code, c.want, body)
			}
			if c.want == 401 && !strings.Contains(body, `"error":"unauthorized`) {
				t.Errorf("body %s: want an unauthorized JSON error", body)
			}
		})
	}
	// A write without the token changes nothing.
	code, _ := e.doAuth("DELETE", "/api/v1/workspaces/acme", "", "Bearer wrong")
	if code != 401 {
		t.Fatalf("delete with wrong token: %d", code)
	}
	e.must("GET", "/api/v1/workspaces/acme", "", 200, nil)

	t.Run("empty admin token refuses everything", func(t *testing.T) {
		e := newEnv(t, func(d *Deps) { d.AdminToken = "" })
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			if code, _ := e.doAuth("GET", "/api/v1/workspaces", "", auth); code != 401 {
				t.Errorf("auth %q: status %d, want 401", auth, code)
			}
		}
	})
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	code, body := e.do("DELETE", "/api/v1/workspaces", "")
	if code != 405 || !strings.Contains(body, "not allowed") || !strings.Contains(body, "GET, POST") {
		t.Errorf("DELETE /api/v1/workspaces: %d %s", code, body)
	}
	code, body = e.do("GET", "/api/v1/nothing-here", "")
	if code != 404 || !strings.Contains(body, "no API route") {
		t.Errorf("unknown route: %d %s", code, body)
	}
	code, body = e.do("GET", "/api/v1/workspaces/nope", "")
	if code != 404 || !strings.Contains(body, `workspace \"nope\" not found`) {
		t.Errorf("missing workspace: %d %s", code, body)
	}
}

// snapshot is the whole visible state, to prove a refused request changed
// nothing.
func (e *testEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	b.WriteString(e.must("GET", "/api/v1/workspaces", "", 200, nil))
	var wl WorkspaceList
	e.must("GET", "/api/v1/workspaces", "", 200, &wl)
	for _, ws := range wl.Workspaces {
		b.WriteString(e.must("GET", "/api/v1/workspaces/"+ws.Name+"/registries", "", 200, nil))
		b.WriteString(e.must("GET", "/api/v1/workspaces/"+ws.Name+"/installs", "", 200, nil))
	}
	evs, err := e.st.QueryAudit(context.Background(), store.AuditQuery{})
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d audit events", len(evs))
	return b.String()
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	pw := distinctiveSecret()
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io","username":"bot","password":"`+pw+`"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","repos":["ghcr.io/org/*"]}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"off","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/off/disable", "", 200, nil)

	huge := `{"name":"` + strings.Repeat("a", 2<<20) + `"}`
	reg := func(extra string) string {
		return `{"name":"new","host":"ghcr.io","username":"u","password":"` + pw + `"` + extra + `}`
	}
	const (
		wss  = "/api/v1/workspaces"
		regs = "/api/v1/workspaces/acme/registries"
		ins  = "/api/v1/workspaces/acme/installs"
	)
	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"empty body", "POST", wss, "", 400, "request body is empty"},
		{"truncated JSON", "POST", wss, `{"name":`, 400, "invalid JSON"},
		{"syntax error", "POST", wss, `{"name" "x"}`, 400, "invalid JSON at byte"},
		{"not an object", "POST", wss, `["x"]`, 400, "want an object"},
		{"unknown field", "POST", wss, `{"name":"x","nmae":"y"}`, 400, `invalid JSON: unknown field \"nmae\"`},
		{"trailing data", "POST", wss, `{"name":"x"} {"name":"y"}`, 400, "unexpected data after the JSON object"},
		{"trailing garbage", "POST", wss, `{"name":"x"} x`, 400, "unexpected data after the JSON object"},
		{"wrong type", "POST", wss, `{"name":5}`, 400, `field \"name\" must be a string`},
		{"huge body", "POST", wss, huge, 413, "request body too large"},
		{"huge registry body", "POST", regs, `{"name":"x","host":"ghcr.io","username":"u","password":"` + strings.Repeat("p", 2<<20) + `"}`, 413, "too large"},
		{"bad workspace name", "POST", wss, `{"name":"Bad Name"}`, 400, `name \"Bad Name\"`},
		{"missing workspace name", "POST", wss, `{}`, 400, "name: required"},
		{"workspace name with slash", "POST", wss, `{"name":"a/b"}`, 400, `name \"a/b\"`},
		{"duplicate workspace", "POST", wss, `{"name":"acme"}`, 409, "already exists"},

		{"registry password typo", "POST", regs, `{"name":"new","host":"ghcr.io","username":"u","pasword":"` + pw + `"}`, 400, `unknown field \"pasword\"`},
		{"registry bad name", "POST", regs, `{"name":"NEW","host":"ghcr.io","username":"u","password":"` + pw + `"}`, 400, `name \"NEW\"`},
		{"registry host traversal", "POST", regs, `{"name":"new","host":"http://x/../y","username":"u","password":"` + pw + `"}`, 400, "host"},
		{"registry host userinfo", "POST", regs, `{"name":"new","host":"user@host","username":"u","password":"` + pw + `"}`, 400, "host"},
		{"registry host with password", "POST", regs, `{"name":"new","host":"bot:` + pw + `@ghcr.io","username":"u","password":"` + pw + `"}`, 400, "host: must not contain user info"},
		{"registry bad endpoint", "POST", regs, reg(`,"endpoint":"ftp://reg.example"`), 400, `endpoint \"ftp://reg.example\"`},
		{"registry endpoint with path", "POST", regs, reg(`,"endpoint":"https://reg.example/v2"`), 400, "endpoint"},
		{"registry endpoint with password", "POST", regs, reg(`,"endpoint":"https://bot:` + pw + `@reg.example"`), 400, "endpoint: must not contain user info"},
		{"registry patch bad endpoint", "PATCH", regs + "/gh", `{"endpoint":"reg.example"}`, 400, "endpoint"},
		{"registry host missing", "POST", regs, `{"name":"new","username":"u","password":"` + pw + `"}`, 400, "host: required"},
		{"registry bad kind", "POST", regs, reg(`,"kind":"nope"`), 400, `kind \"nope\"`},
		{"registry kind for another host", "POST", regs, reg(`,"kind":"ecr"`), 400, `kind ecr: host \"ghcr.io\" is not an Amazon ECR registry`},
		{"registry basic without username", "POST", regs, `{"name":"new","host":"ghcr.io","password":"` + pw + `"}`, 400, "username"},
		{"registry empty password", "POST", regs, `{"name":"new","host":"ghcr.io","username":"u","password":""}`, 400, "empty password"},
		{"registry password not a string", "POST", regs, `{"name":"new","host":"ghcr.io","username":"u","password":12345}`, 400, `field \"password\" must be a string`},
		{"registry insecure not a bool", "POST", regs, reg(`,"insecure":"yes"`), 400, `field \"insecure\" must be true or false`},
		{"registry username with newline", "POST", regs, `{"name":"new","host":"ghcr.io","username":"a\nb","password":"` + pw + `"}`, 400, "username: contains control characters"},
		{"registry username with escape", "POST", regs, `{"name":"new","host":"ghcr.io","username":"a\u001b]8;;https://evil.example\u0007b","password":"` + pw + `"}`, 400, "username: contains control characters"},
		{"registry username with bidi override", "POST", regs, `{"name":"new","host":"ghcr.io","username":"bot\u202egnp.exe","password":"` + pw + `"}`, 400, "username: contains format characters"},
		{"registry patch username with zero-width space", "PATCH", regs + "/gh", `{"username":"ad\u200bmin"}`, 400, "username: contains format characters"},
		{"registry duplicate", "POST", regs, `{"name":"gh","host":"ghcr.io","username":"u","password":"` + pw + `"}`, 409, "already exists"},
		{"registry in missing workspace", "POST", "/api/v1/workspaces/nope/registries", reg(""), 404, `workspace \"nope\" not found`},
		{"registry patch empty", "PATCH", regs + "/gh", `{}`, 400, "nothing to update"},
		{"registry bad realm host", "POST", regs, reg(`,"realm_hosts":["https://auth.example/token"]`), 400, `realm_hosts: realm host \"https://auth.example/token\"`},
		{"registry realm host with comma", "PATCH", regs + "/gh", `{"realm_hosts":["a.example,b.example"]}`, 400, "realm_hosts"},
		{"registry allow_private_network not a bool", "POST", regs, reg(`,"allow_private_network":"yes"`), 400, `field \"allow_private_network\" must be true or false`},
		{"registry patch empty password", "PATCH", regs + "/gh", `{"password":""}`, 400, "empty password"},
		{"registry patch drop basic username", "PATCH", regs + "/gh", `{"username":""}`, 400, "username"},
		{"registry patch unknown field", "PATCH", regs + "/gh", `{"enabled":false}`, 400, `unknown field \"enabled\"`},
		{"registry patch missing", "PATCH", regs + "/nope", `{"password":"` + pw + `"}`, 404, "not found"},

		{"install bad pattern", "POST", ins, `{"name":"new","repos":["ghcr.io/org/*","ghcr.io"]}`, 400, `repos[1]: repository pattern \"ghcr.io\"`},
		{"install too many repos", "POST", ins, jsonBody(t, CreateInstallRequest{Name: "new", Repos: slices.Repeat([]string{"ghcr.io/x"}, MaxRepos+1)}), 400, "at most 256"},
		{"install pattern too long", "POST", ins, `{"name":"new","repos":["ghcr.io/` + strings.Repeat("a/", 300) + `a"]}`, 400, "repos[0]: longer than"},
		{"install bad pattern chars", "POST", ins, `{"name":"new","repos":["ghcr.io/Org/App"]}`, 400, "repos[0]"},
		{"install bad name", "POST", ins, `{"name":"-x"}`, 400, `name \"-x\"`},
		{"install bad cluster", "POST", ins, `{"name":"new","cluster":"Prod Cluster","all_repos":true}`, 400, "cluster"},
		{"install bad namespace", "POST", ins, `{"name":"new","namespace":"Bad_NS","all_repos":true}`, 400, "namespace"},
		{"install sa without namespace", "POST", ins, `{"name":"new","service_account":"default","all_repos":true}`, 400, "service_account: needs a namespace"},
		{"install repos not an array", "POST", ins, `{"name":"new","repos":"ghcr.io/x"}`, 400, `field \"repos\" must be an array`},
		{"install duplicate", "POST", ins, `{"name":"web","all_repos":true}`, 409, "already exists"},
		{"install without repos", "POST", ins, `{"name":"new"}`, 400, "or all_repos: true"},
		{"install repos and all_repos", "POST", ins, `{"name":"new","repos":["ghcr.io/x"],"all_repos":true}`, 400, "exclude each other"},
		{"install patch empty repos", "PATCH", ins + "/web", `{"repos":[]}`, 400, "say all_repos: true"},
		{"install patch bad pattern", "PATCH", ins + "/web", `{"repos":["nope"]}`, 400, "repos[0]"},
		{"install patch nothing", "PATCH", ins + "/web", `{}`, 400, "nothing to update"},
		{"install patch missing", "PATCH", ins + "/nope", `{"all_repos":true}`, 404, "not found"},

		{"ttl too short", "POST", ins + "/web/tokens", `{"ttl":"5s"}`, 400, `ttl \"5s\"`},
		{"ttl too long", "POST", ins + "/web/tokens", `{"ttl":"48h"}`, 400, `ttl \"48h\"`},
		{"ttl not a duration", "POST", ins + "/web/tokens", `{"ttl":"banana"}`, 400, "not a duration"},
		{"ttl unknown field", "POST", ins + "/web/tokens", `{"tll":"1h"}`, 400, `unknown field \"tll\"`},
		{"token for disabled install", "POST", ins + "/off/tokens", ``, 409, `install \"off\" in workspace \"acme\" is disabled`},
		{"token for missing install", "POST", ins + "/nope/tokens", ``, 404, "not found"},

		{"audit bad since", "GET", "/api/v1/audit?since=yesterday", "", 400, `since \"yesterday\"`},
		{"audit negative since", "GET", "/api/v1/audit?since=-1h", "", 400, "since"},
		{"audit bad limit", "GET", "/api/v1/audit?limit=0", "", 400, "limit"},
		{"audit huge limit", "GET", "/api/v1/audit?limit=1000000", "", 400, "limit"},
		{"audit bad after", "GET", "/api/v1/audit?after=x", "", 400, "after"},
		{"audit unknown param", "GET", "/api/v1/audit?workspce=acme", "", 400, `unknown query parameter \"workspce\"`},
		{"audit repeated param", "GET", "/api/v1/audit?install=a&install=b", "", 400, "given 2 times"},
		{"audit bad refused", "GET", "/api/v1/audit?refused=maybe", "", 400, `refused \"maybe\"`},
	}
	before := e.snapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.do(c.method, c.path, c.body)
			if code != c.status {
				t.Errorf("status %d, want %d: %s", code, c.status, body)
			}
			if !strings.Contains(body, c.msg) {
				t.Errorf("body %s: want it to contain %s", body, c.msg)
			}
			if !strings.HasPrefix(body, `{"error":`) {
				t.Errorf("body %s: want an error object", body)
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Errorf("state changed by refused requests:\nbefore %s\nafter  %s", before, after)
	}
	if e.minted != 0 {
		t.Errorf("%d tokens minted by refused requests", e.minted)
	}
	e.assertNoLeak(pw)
}

// TestServerNotOnlyRecorder runs a request through a real HTTP server, so
// MaxBytesReader and headers behave as in production.
func TestThroughHTTPServer(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/workspaces", strings.NewReader(`{"name":"`+strings.Repeat("a", 2<<20)+`"}`))
	req.Header.Set("Authorization", "Bearer "+testAdmin)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("huge body over HTTP: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/api/v1/workspaces", nil)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no auth: %d %v", resp.StatusCode, resp.Header)
	}
}

// Unauthenticated requests are logged; a client-chosen method must not
// make those lines as long as it likes.
func TestLongMethodLoggedShort(t *testing.T) {
	e := newEnv(t)
	method := "X" + strings.Repeat("M", 4000)
	if code, _ := e.doAuth(method, "/api/v1/workspaces", "", ""); code != 401 {
		t.Fatalf("long method without token: %d", code)
	}
	if l := e.logs.String(); strings.Contains(l, strings.Repeat("M", 100)) || !strings.Contains(l, "api request") {
		t.Errorf("log line holds the method in full (%d bytes)", len(l))
	}
}
