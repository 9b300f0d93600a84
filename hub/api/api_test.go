package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testsa"
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

func TestWorkspaceCRUD(t *testing.T) {
	e := newEnv(t)
	var ws Workspace
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, &ws)
	if ws.Name != "acme" || ws.CreatedAt.IsZero() {
		t.Fatalf("created %+v", ws)
	}
	e.must("POST", "/api/v1/workspaces", `{"name":"beta"}`, 201, nil)
	_, body := e.do("POST", "/api/v1/workspaces", `{"name":"acme"}`)
	if !strings.Contains(body, `workspace \"acme\" already exists`) {
		t.Errorf("duplicate: %s", body)
	}
	var list WorkspaceList
	e.must("GET", "/api/v1/workspaces", "", 200, &list)
	if len(list.Workspaces) != 2 || list.Workspaces[0].Name != "acme" || list.Workspaces[1].Name != "beta" {
		t.Fatalf("list %+v", list)
	}
	e.must("DELETE", "/api/v1/workspaces/acme", "", 200, nil)
	e.must("DELETE", "/api/v1/workspaces/acme", "", 404, nil)
	e.must("GET", "/api/v1/workspaces", "", 200, &list)
	if len(list.Workspaces) != 1 || list.Workspaces[0].Name != "beta" {
		t.Fatalf("list after delete %+v", list)
	}
	// An empty list is [], not null.
	e.must("DELETE", "/api/v1/workspaces/beta", "", 200, nil)
	if b := e.must("GET", "/api/v1/workspaces", "", 200, nil); !strings.Contains(b, `"workspaces":[]`) {
		t.Errorf("empty list: %s", b)
	}
}

func TestRegistryLifecycleNeverLeaksSecret(t *testing.T) {
	e := newEnv(t)
	pw1, pw2 := distinctiveSecret(), distinctiveSecret()
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)

	var reg Registry
	e.must("POST", "/api/v1/workspaces/acme/registries", jsonBody(t, CreateRegistryRequest{
		Name: "gh", Host: "https://GHCR.io/org-a", Username: "bot", Password: Password(pw1),
	}), 201, &reg)
	want := Registry{Name: "gh", Host: "ghcr.io/org-a", Kind: "basic", Username: "bot", Enabled: true, Version: 1}
	if reg.Name != want.Name || reg.Host != want.Host || reg.Kind != want.Kind || reg.Username != want.Username ||
		!reg.Enabled || reg.Version != 1 || reg.Insecure || reg.CreatedAt.IsZero() {
		t.Fatalf("created %+v, want %+v", reg, want)
	}
	// A token kind without a username, insecure, with an endpoint.
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"local","host":"registry.corp","endpoint":"http://127.0.0.1:5000/","kind":"token","password":"`+pw1+`","insecure":true}`, 201, &reg)
	if reg.Kind != "token" || reg.Username != "" || !reg.Insecure || reg.Endpoint != "http://127.0.0.1:5000" {
		t.Fatalf("token kind: %+v", reg)
	}
	e.must("PATCH", "/api/v1/workspaces/acme/registries/local", `{"endpoint":"https://registry.corp:8443"}`, 200, &reg)
	if reg.Endpoint != "https://registry.corp:8443" || reg.Version != 1 {
		t.Fatalf("patch endpoint: %+v", reg)
	}
	e.must("PATCH", "/api/v1/workspaces/acme/registries/local", `{"endpoint":""}`, 200, &reg)
	if reg.Endpoint != "" {
		t.Fatalf("clear endpoint: %+v", reg)
	}
	// The network policy: off by default, set and cleared by the operator.
	if reg.AllowPrivateNetwork || len(reg.RealmHosts) != 0 {
		t.Fatalf("network policy defaults: %+v", reg)
	}
	e.must("PATCH", "/api/v1/workspaces/acme/registries/local", `{"allow_private_network":true,"realm_hosts":["auth.corp","sso.corp:8443"]}`, 200, &reg)
	if !reg.AllowPrivateNetwork || !slices.Equal(reg.RealmHosts, []string{"auth.corp", "sso.corp:8443"}) || reg.Version != 1 {
		t.Fatalf("patch network policy: %+v", reg)
	}
	reg = Registry{} // realm_hosts is omitted when empty
	e.must("PATCH", "/api/v1/workspaces/acme/registries/local", `{"allow_private_network":false,"realm_hosts":[]}`, 200, &reg)
	if reg.AllowPrivateNetwork || len(reg.RealmHosts) != 0 {
		t.Fatalf("clear network policy: %+v", reg)
	}

	var list RegistryList
	e.must("GET", "/api/v1/workspaces/acme/registries", "", 200, &list)
	if len(list.Registries) != 2 || list.Registries[0].Name != "gh" || list.Registries[1].Name != "local" {
		t.Fatalf("list %+v", list)
	}
	e.must("GET", "/api/v1/workspaces/acme/registries/gh", "", 200, &reg)

	// Update without a password keeps the version.
	e.must("PATCH", "/api/v1/workspaces/acme/registries/gh", `{"username":"bot2","insecure":true}`, 200, &reg)
	if reg.Username != "bot2" || !reg.Insecure || reg.Version != 1 {
		t.Fatalf("patch username: %+v", reg)
	}
	// A new password is a new secret version.
	e.must("PATCH", "/api/v1/workspaces/acme/registries/gh", `{"password":"`+pw2+`"}`, 200, &reg)
	if reg.Version != 2 || reg.Username != "bot2" {
		t.Fatalf("patch password: %+v", reg)
	}

	// Test opens the newest secret and passes it to Check; the upstream's
	// echo of it is redacted.
	var res struct {
		Upstream      string `json:"upstream"`
		Repository    string `json:"repository"`
		Authenticated bool   `json:"authenticated"`
		Error         string `json:"error"`
	}
	e.must("POST", "/api/v1/workspaces/acme/registries/gh/test", `{"repository":"ghcr.io/org-a/app"}`, 200, &res)
	if len(e.checks) != 1 || e.checks[0].secret.Password != pw2 || e.checks[0].repo != "org-a/app" ||
		e.checks[0].cred.Username != "bot2" || e.checks[0].cred.Version != 2 {
		t.Fatalf("check calls: %+v", e.checks)
	}
	if res.Upstream != "ghcr.io/org-a" || res.Repository != "org-a/app" || !strings.Contains(res.Error, "REDACTED") {
		t.Errorf("test result %+v", res)
	}
	e.must("POST", "/api/v1/workspaces/acme/registries/gh/test", "", 200, nil) // body optional
	e.must("POST", "/api/v1/workspaces/acme/registries/gh/test", `{"repository":"Bad Repo"}`, 400, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries/nope/test", `{}`, 404, nil)

	e.must("POST", "/api/v1/workspaces/acme/registries/gh/disable", "", 200, &reg)
	if reg.Enabled {
		t.Fatal("disable did not disable")
	}
	e.must("POST", "/api/v1/workspaces/acme/registries/gh/enable", "", 200, &reg)
	if !reg.Enabled || reg.Version != 2 {
		t.Fatalf("enable: %+v", reg)
	}

	// Errors that involve the secret do not echo it either.
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"gh","host":"ghcr.io","username":"u","password":"`+pw1+`"}`, 409, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"x","host":"user@host","username":"u","password":"`+pw1+`"}`, 400, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"x","host":"ghcr.io","username":"u","password":"`+pw1+`", "pasword":"`+pw2+`"}`, 400, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"x","host":"ghcr.io","username":"u","password":"`+pw1+`"}{"x":1}`, 400, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries",
		`{"name":"x","host":"ghcr.io","username":"u","password":"`+pw1, 400, nil)
	e.must("POST", "/api/v1/workspaces/nope/registries",
		`{"name":"x","host":"ghcr.io","username":"u","password":"`+pw1+`"}`, 404, nil)

	e.must("DELETE", "/api/v1/workspaces/acme/registries/gh", "", 204, nil)
	e.must("GET", "/api/v1/workspaces/acme/registries/gh", "", 404, nil)
	e.must("PATCH", "/api/v1/workspaces/acme/registries/gh", `{"password":"`+pw2+`"}`, 404, nil)

	e.assertNoLeak(pw1)
	e.assertNoLeak(pw2)
	if !strings.Contains(e.logs.String(), `"route":"POST /api/v1/workspaces/{ws}/registries"`) {
		t.Errorf("log lacks the route: %s", e.logs.String())
	}
}

func TestRegistryTestNotConfigured(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Check = nil })
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io","kind":"token","password":"p"}`, 201, nil)
	_, body := e.do("POST", "/api/v1/workspaces/acme/registries/gh/test", "")
	if !strings.Contains(body, "not available") {
		t.Errorf("body %s", body)
	}
	e.must("POST", "/api/v1/workspaces/acme/registries/gh/test", "", 501, nil)
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

func TestInstallsAndTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"prod"}`, 201, nil)

	var in Install
	e.must("POST", "/api/v1/workspaces/acme/installs", jsonBody(t, CreateInstallRequest{
		Name: "web", Repos: []string{"ghcr.io/org/*", "docker.io/nginx", "GHCR.io/org/*"},
		Cluster: "prod", Namespace: "shop", ServiceAccount: "puller",
	}), 201, &in)
	wantRepos := []string{"ghcr.io/org/*", "docker.io/library/nginx"}
	if fmt.Sprint(in.Repos) != fmt.Sprint(wantRepos) || in.Generation != 1 || !in.Enabled ||
		in.Cluster != "prod" || in.Namespace != "shop" || in.ServiceAccount != "puller" {
		t.Fatalf("created %+v", in)
	}
	// No repos and no all_repos: refused, the broad grant is explicit.
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"all"}`, 400, nil)
	e.must("PATCH", "/api/v1/workspaces/acme/installs/web", `{"repos":[]}`, 400, nil)
	// all_repos: everything, shown as [].
	if b := e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"all","all_repos":true}`, 201, nil); !strings.Contains(b, `"repos":[]`) {
		t.Errorf("install with all_repos: %s", b)
	}
	var list InstallList
	e.must("GET", "/api/v1/workspaces/acme/installs", "", 200, &list)
	if len(list.Installs) != 2 || list.Installs[0].Name != "all" || list.Installs[1].Name != "web" {
		t.Fatalf("list %+v", list)
	}

	stored, err := e.st.GetInstall(ctx, "acme", "web")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := e.st.GetWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(body string, wantGen int64, wantTTL time.Duration) {
		t.Helper()
		var tok Token
		start := time.Now()
		e.must("POST", "/api/v1/workspaces/acme/installs/web/tokens", body, 201, &tok)
		if tok.Install != "web" || tok.Workspace != "acme" || tok.Token == "" {
			t.Fatalf("token response %+v", tok)
		}
		c, err := e.keyring.Verify(tok.Token)
		if err != nil {
			t.Fatalf("minted token does not verify: %v", err)
		}
		cur, _ := e.st.GetInstall(ctx, "acme", "web")
		if c.Install != stored.ID || c.Workspace != ws.ID || c.Cluster != "prod" || c.Generation != wantGen ||
			fmt.Sprint(c.Repos) != fmt.Sprint(cur.Repos) {
			t.Fatalf("claims %+v, want install %s workspace %s generation %d repos %v", c, stored.ID, ws.ID, wantGen, cur.Repos)
		}
		if d := tok.ExpiresAt.Sub(start); d < wantTTL-2*time.Second || d > wantTTL+2*time.Second {
			t.Errorf("expires in %v, want %v", d, wantTTL)
		}
		if !tok.ExpiresAt.Equal(c.ExpiresAt()) {
			t.Errorf("expires_at %v != claims %v", tok.ExpiresAt, c.ExpiresAt())
		}
	}
	mint("", 1, DefaultTokenTTL)
	mint(`{"ttl":"1h"}`, 1, time.Hour)
	mint(`{"ttl":"24h"}`, 1, 24*time.Hour)
	mint(`{"ttl":"1m"}`, 1, time.Minute)

	// Narrowing the repos bumps the generation.
	e.must("PATCH", "/api/v1/workspaces/acme/installs/web", `{"repos":["ghcr.io/org/app"]}`, 200, &in)
	if in.Generation != 2 || fmt.Sprint(in.Repos) != "[ghcr.io/org/app]" {
		t.Fatalf("patched %+v", in)
	}
	mint("", 2, DefaultTokenTTL)

	e.must("POST", "/api/v1/workspaces/acme/installs/web/disable", "", 200, &in)
	if in.Enabled || in.Generation != 3 {
		t.Fatalf("disabled %+v", in)
	}
	_, body := e.do("POST", "/api/v1/workspaces/acme/installs/web/tokens", `{"ttl":"10m"}`)
	if !strings.Contains(body, "disabled") {
		t.Fatalf("token for disabled install: %s", body)
	}
	e.must("POST", "/api/v1/workspaces/acme/installs/web/tokens", "", 409, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/enable", "", 200, &in)
	if !in.Enabled || in.Generation != 3 {
		t.Fatalf("enabled %+v", in)
	}
	mint("", 3, DefaultTokenTTL)
	if e.minted != 6 {
		t.Errorf("OnTokenMinted called %d times, want 6", e.minted)
	}

	e.must("GET", "/api/v1/workspaces/acme/installs/web", "", 200, &in)
	e.must("DELETE", "/api/v1/workspaces/acme/installs/web", "", 204, nil)
	e.must("GET", "/api/v1/workspaces/acme/installs/web", "", 404, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/tokens", "", 404, nil)
	// The log mentions mints but never a token.
	if l := e.logs.String(); !strings.Contains(l, "install token minted") || strings.Contains(l, "eyJ") {
		t.Errorf("log: %s", l)
	}
}

func TestMintWithoutKeyring(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Keyring = nil })
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/tokens", "", 501, nil)
}

func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := e.now.Add(-3 * time.Hour)
	var evs []store.AuditEvent
	for i := range 6 {
		ws, in := "acme", "web"
		if i%2 == 1 {
			in = "api"
		}
		if i == 5 {
			ws = "beta"
		}
		evs = append(evs, store.AuditEvent{
			Time: base.Add(time.Duration(i) * 30 * time.Minute), Workspace: ws, Install: in, Cluster: "prod",
			Node: "n1", ClientAddr: "10.0.0.1:1234", Upstream: "ghcr.io", Repository: "org/app",
			Reference: fmt.Sprintf("v%d", i), Kind: "manifest", Method: "GET", Bytes: int64(100 * i),
			Status: 200, Duration: time.Duration(i) * 1500 * time.Millisecond,
		})
		if i == 2 || i == 5 {
			evs[i].Status, evs[i].Reason, evs[i].Count = 401, "install_disabled", int64(i)
		}
	}
	if err := e.st.AppendAudit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	all, _ := e.st.QueryAudit(ctx, store.AuditQuery{})
	cases := []struct {
		query string
		refs  string
	}{
		{"", "v0 v1 v2 v3 v4 v5"},
		{"workspace=acme", "v0 v1 v2 v3 v4"},
		{"workspace=acme&install=api", "v1 v3"},
		{"install=web", "v0 v2 v4"},
		{"since=1h", "v4 v5"}, // now-1h = base+2h
		{"since=90m&workspace=acme", "v3 v4"},
		{"since=" + base.Add(2*time.Hour).Format(time.RFC3339), "v4 v5"},
		{fmt.Sprintf("after=%d", all[3].ID), "v4 v5"},
		{"limit=2", "v0 v1"},
		{fmt.Sprintf("workspace=acme&after=%d&limit=1", all[1].ID), "v2"},
		{"workspace=nope", ""},
		{"refused=true", "v2 v5"},
		{"refused=true&workspace=acme", "v2"},
		{"refused=false", "v0 v1 v2 v3 v4 v5"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			var out AuditEvents
			e.must("GET", "/api/v1/audit?"+c.query, "", 200, &out)
			var refs []string
			for _, ev := range out.Events {
				refs = append(refs, ev.Reference)
			}
			if got := strings.Join(refs, " "); got != c.refs {
				t.Errorf("events %q, want %q", got, c.refs)
			}
		})
	}
	var out AuditEvents
	e.must("GET", "/api/v1/audit?install=api&limit=1", "", 200, &out)
	got := out.Events[0]
	want := AuditEvent{ID: all[1].ID, Time: base.Add(30 * time.Minute), Workspace: "acme", Install: "api", Cluster: "prod",
		Node: "n1", ClientAddr: "10.0.0.1:1234", Upstream: "ghcr.io", Repository: "org/app", Reference: "v1",
		Kind: "manifest", Method: "GET", Bytes: 100, Status: 200, DurationMS: 1500, Count: 1}
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time = want.Time
	if got != want {
		t.Errorf("event %+v\nwant  %+v", got, want)
	}
	e.must("GET", "/api/v1/audit?refused=1&workspace=beta", "", 200, &out)
	if len(out.Events) != 1 || out.Events[0].Reason != "install_disabled" || out.Events[0].Count != 5 || out.Events[0].Status != 401 {
		t.Errorf("refused events %+v", out.Events)
	}
	b := e.must("GET", "/api/v1/audit?workspace=nope", "", 200, nil)
	if !strings.Contains(b, `"events":[]`) {
		t.Errorf("empty audit: %s", b)
	}
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

func TestPasswordNeverFormats(t *testing.T) {
	pw := distinctiveSecret()
	p := Password(pw)
	req := CreateRegistryRequest{Name: "gh", Host: "ghcr.io", Username: "bot", Password: p}
	upd := UpdateRegistryRequest{Password: &p}
	var buf testlog.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	l.Info("x", "req", req, "pw", p, "upd", upd)
	for _, s := range []string{
		fmt.Sprint(req), fmt.Sprintf("%v %+v %#v %s", req, req, req, p), fmt.Sprintf("%+v", upd),
		fmt.Sprintf("%v %#v", p, p), buf.String(),
	} {
		if strings.Contains(s, pw) {
			t.Errorf("formatted output contains the password: %s", s)
		}
	}
	// It still travels as a plain JSON string.
	if b := jsonBody(t, req); !strings.Contains(b, `"password":"`+pw+`"`) {
		t.Errorf("marshalled request %s", b)
	}
}

func TestClusters(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"other"}`, 201, nil)
	var jt JoinToken
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"acme"}`, 201, &jt)
	if !strings.HasPrefix(jt.JoinToken, "pgj1.") || jt.Cluster.Workspace != "acme" || jt.Cluster.Shared {
		t.Fatalf("create: %+v", jt)
	}
	var again JoinToken
	e.must("POST", "/api/v1/clusters/edge/join-token", "", 200, &again)
	if again.JoinToken == jt.JoinToken || !strings.HasPrefix(again.JoinToken, "pgj1.") {
		t.Fatal("rotate returned the same token")
	}
	var list ClusterList
	e.must("GET", "/api/v1/clusters", "", 200, &list)
	if len(list.Clusters) != 1 || strings.Contains(fmt.Sprint(list), "pgj1.") {
		t.Fatalf("list: %+v", list)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"name":"edge"}`, "already exists"},
		{`{"name":"x","workspace":"nope"}`, "not found"},
		{`{"name":"x","sa_jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`, "sa_jwks"},
		{`{"name":"x","sa_issuer":"http://k8s"}`, "sa_issuer"},
		{`{"name":"Bad"}`, "name"},
	} {
		code, body := e.do("POST", "/api/v1/clusters", tc.body)
		if code < 400 || code >= 500 || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d %s", tc.body, code, body)
		}
	}
	// A single-workspace cluster takes installs of its workspace only.
	code, body := e.do("POST", "/api/v1/workspaces/other/installs", `{"name":"web","cluster":"edge","all_repos":true}`)
	if code != 400 || !strings.Contains(body, "belongs to workspace") {
		t.Fatalf("foreign install: %d %s", code, body)
	}
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","cluster":"edge","all_repos":true}`, 201, nil)
	var nodes NodeList
	e.must("GET", "/api/v1/clusters/edge/nodes", "", 200, &nodes)
	if code, _ := e.do("POST", "/api/v1/clusters/edge/nodes/node_x/revoke", ""); code != 404 {
		t.Fatalf("revoke unknown node: %d", code)
	}
	// Installs are bound: the delete is refused, listing them, unless forced.
	if code, body := e.do("DELETE", "/api/v1/clusters/edge", ""); code != 409 || !strings.Contains(body, "acme/web") || !strings.Contains(body, "force") {
		t.Fatalf("delete a cluster with installs: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/api/v1/clusters/edge?force=maybe", ""); code != 400 || !strings.Contains(body, "force") {
		t.Fatalf("bad force: %d %s", code, body)
	}
	var del DeleteClusterResult
	e.must("DELETE", "/api/v1/clusters/edge?force=true", "", 200, &del)
	if len(del.UnboundInstalls) != 1 || del.UnboundInstalls[0] != "acme/web" {
		t.Fatalf("forced delete: %+v", del)
	}
	if code, _ := e.do("GET", "/api/v1/clusters/edge", ""); code != 404 {
		t.Fatal("cluster still there")
	}
	var in Install
	e.must("GET", "/api/v1/workspaces/acme/installs/web", "", 200, &in)
	if in.Cluster != "" || in.Generation != 2 {
		t.Fatalf("install after forced delete: %+v", in)
	}
	// A new cluster of the same name has nothing bound to it.
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"other"}`, 201, nil)
	e.must("DELETE", "/api/v1/clusters/edge", "", 200, &del)
	if len(del.UnboundInstalls) != 0 {
		t.Fatalf("re-created cluster had installs: %+v", del)
	}
}

func TestJoinTokenLimits(t *testing.T) {
	e := newEnv(t)
	var jt JoinToken
	e.must("POST", "/api/v1/clusters", `{"name":"edge","join_token_uses":1,"join_token_ttl":"1h"}`, 201, &jt)
	if jt.Cluster.JoinTokenUsesLeft == nil || *jt.Cluster.JoinTokenUsesLeft != 1 || jt.Cluster.JoinTokenExpiresAt == nil ||
		jt.Cluster.JoinTokenExpiresAt.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("create: %+v", jt.Cluster)
	}
	jt = JoinToken{}
	e.must("POST", "/api/v1/clusters/edge/join-token", `{"join_token_uses":3}`, 200, &jt)
	if jt.Cluster.JoinTokenUsesLeft == nil || *jt.Cluster.JoinTokenUsesLeft != 3 || jt.Cluster.JoinTokenExpiresAt != nil {
		t.Fatalf("rotate: %+v", jt.Cluster)
	}
	jt = JoinToken{}
	e.must("POST", "/api/v1/clusters/edge/join-token", "", 200, &jt)
	if jt.Cluster.JoinTokenUsesLeft != nil {
		t.Fatalf("rotate without limits: %+v", jt.Cluster)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/clusters", `{"name":"x","join_token_uses":-1}`, "join_token_uses"},
		{"POST", "/api/v1/clusters", `{"name":"x","join_token_ttl":"soon"}`, "join_token_ttl"},
		{"POST", "/api/v1/clusters/edge/join-token", `{"join_token_ttl":"-1h"}`, "join_token_ttl"},
	} {
		if code, body := e.do(tc.method, tc.path, tc.body); code != 400 || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d %s", tc.body, code, body)
		}
	}
	if code, _ := e.do("GET", "/api/v1/clusters/x", ""); code != 404 {
		t.Fatal("a refused create stored a cluster")
	}
}

func TestClusterKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := testsa.New(t), testsa.New(t)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	var keys ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil || keys.Proposal != nil || !keys.Shared {
		t.Fatalf("fresh cluster: %+v", keys)
	}
	if code, body := e.do("POST", "/api/v1/clusters/shared/jwks/approve", ""); code != 400 || !strings.Contains(body, "no proposed") {
		t.Fatalf("approve nothing: %d %s", code, body)
	}
	// An agent's offer (as the token service records it).
	c, _ := e.st.GetCluster(ctx, "shared")
	n, _ := e.st.CreateNode(ctx, c.ID, "worker-1", []byte("h"))
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: a.JWKS(), NodeID: n.ID}); err != nil {
		t.Fatal(err)
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	p := keys.Proposal
	if keys.Approved != nil || p == nil || len(p.Keys) != 1 || p.Keys[0].Thumbprint == "" || p.Keys[0].Kty != "RSA" ||
		p.ProposedBy != n.ID || p.ProposedByName != "worker-1" || p.ProposedAt.IsZero() {
		t.Fatalf("proposal: %+v", keys)
	}
	var list ClusterList
	e.must("GET", "/api/v1/clusters", "", 200, &list)
	if list.Clusters[0].SAKeys || !list.Clusters[0].SAKeysPending {
		t.Fatalf("list: %+v", list.Clusters[0])
	}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{}`, 400, "thumbprints: required"},
		{`{"issuer":"` + testsa.DefaultIssuer + `"}`, 400, "thumbprints: required"},
		{`{"thumbprints":["nope"]}`, 409, "thumbprints"},
		{`{"kids":["nope"],"thumbprints":["` + p.Keys[0].Thumbprint + `"]}`, 409, "key ids"},
		{`{"thumbprints":["` + p.Keys[0].Thumbprint + `"]}`, 400, "names no issuer"},
		{`{"thumbprints":["` + p.Keys[0].Thumbprint + `"],"issuer":"http://k8s"}`, 400, "https://"},
	} {
		if code, body := e.do("POST", "/api/v1/clusters/shared/jwks/approve", tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Fatalf("approve %s: %d %s", tc.body, code, body)
		}
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil {
		t.Fatal("a refused approve approved keys")
	}
	keys = ClusterKeys{}
	e.must("POST", "/api/v1/clusters/shared/jwks/approve", `{"thumbprints":["`+p.Keys[0].Thumbprint+`"],"kids":["`+p.Keys[0].KID+`"],"issuer":"`+testsa.DefaultIssuer+`"}`, 200, &keys)
	if keys.Approved == nil || keys.Approved.Issuer != testsa.DefaultIssuer || keys.Proposal != nil || keys.Approved.Keys[0].Thumbprint != p.Keys[0].Thumbprint {
		t.Fatalf("approved: %+v", keys)
	}

	// Set replaces the keys (rotation: several at once).
	both := `{"keys":[` + strings.TrimSuffix(strings.TrimPrefix(string(a.JWKS()), `{"keys":[`), `]}`) + "," +
		strings.TrimSuffix(strings.TrimPrefix(string(b.JWKS()), `{"keys":[`), `]}`) + `]}`
	keys = ClusterKeys{}
	e.must("PUT", "/api/v1/clusters/shared/jwks", `{"jwks":`+both+`,"issuer":"https://issuer.example"}`, 200, &keys)
	if len(keys.Approved.Keys) != 2 || keys.Approved.Issuer != "https://issuer.example" {
		t.Fatalf("set: %+v", keys)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"issuer":"https://k"}`, "jwks"},
		{`{"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]},"issuer":"https://k"}`, "jwks"},
		{`{"jwks":` + string(b.JWKS()) + `}`, "issuer"},
		{`{"jwks":` + string(b.JWKS()) + `,"issuer":"http://k"}`, "issuer"},
	} {
		if code, body := e.do("PUT", "/api/v1/clusters/shared/jwks", tc.body); code != 400 || !strings.Contains(body, tc.want) {
			t.Fatalf("set %s: %d %s", tc.body, code, body)
		}
	}
	if code, _ := e.do("PUT", "/api/v1/clusters/nope/jwks", `{"jwks":`+string(b.JWKS())+`,"issuer":"https://k"}`); code != 404 {
		t.Fatalf("set on unknown cluster: %d", code)
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if len(keys.Approved.Keys) != 2 {
		t.Fatal("a refused set changed the keys")
	}
}

// A node that replaces the proposal between the operator's show and approve
// gets nothing approved: approval names the thumbprints that were shown.
func TestClusterKeysSwappedProposalRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	honest, evil := testsa.New(t), testsa.New(t)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	c, _ := e.st.GetCluster(ctx, "shared")
	n1, _ := e.st.CreateNode(ctx, c.ID, "worker-1", []byte("h1"))
	n2, _ := e.st.CreateNode(ctx, c.ID, "worker-2", []byte("h2"))
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: honest.JWKS(), Issuer: testsa.DefaultIssuer, NodeID: n1.ID}); err != nil {
		t.Fatal(err)
	}
	var shown ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &shown)
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: evil.JWKS(), Issuer: testsa.DefaultIssuer, NodeID: n2.ID}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{}`, `{"thumbprints":["` + shown.Proposal.Keys[0].Thumbprint + `"]}`} {
		if code, out := e.do("POST", "/api/v1/clusters/shared/jwks/approve", body); code < 400 {
			t.Fatalf("approve %s after the proposal was swapped: %d %s", body, code, out)
		}
	}
	var keys ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil {
		t.Fatalf("the swapped proposal was approved: %+v", keys.Approved)
	}
}

// Finding 12: a second workspace cannot bind installs to a namespace of a
// shared cluster that another workspace uses, and is not told whose it is.
func TestSharedNamespaceTaken(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"victim-a"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"tenant-evil"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"shared-2"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/victim-a/installs", `{"name":"a-s2","cluster":"shared-2","namespace":"ns-a","all_repos":true}`, 201, nil)
	code, body := e.do("POST", "/api/v1/workspaces/tenant-evil/installs", `{"name":"squat2","cluster":"shared-2","namespace":"ns-a","all_repos":true}`)
	if code != 409 || !strings.Contains(body, "ns-a") || !strings.Contains(body, "taken") ||
		strings.Contains(body, "victim") || strings.Contains(body, "a-s2") {
		t.Fatalf("squat: %d %s", code, body)
	}
	e.must("POST", "/api/v1/workspaces/tenant-evil/installs", `{"name":"own","cluster":"shared-2","namespace":"ns-evil","all_repos":true}`, 201, nil)
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
