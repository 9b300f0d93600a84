package api

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testlog"
)

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
