package api

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func sdlFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../sdl/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSDLImport(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"tenant"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"provider-1"}`, 201, nil)
	const path = "/api/v1/workspaces/tenant/sdl-imports"
	multi := sdlFixture(t, "multi.yaml")

	var res SDLImport
	e.must("POST", path, jsonBody(t, SDLImportRequest{SDL: multi, Cluster: "provider-1", Namespace: "lease-1", Rewrite: true, HubHost: "hub.example.com"}), 200, &res)
	if len(res.Credentials) != 2 || res.Install == nil || res.Install.Action != "created" || len(res.Install.Repos) != 3 ||
		res.Cluster != "provider-1" || res.Namespace != "lease-1" || res.Format != "sdl" || res.Version != "2.1" {
		t.Fatalf("import %+v", res)
	}
	if !strings.Contains(res.Rewritten, "image: hub.example.com/docker.io/acme/worker:latest") || strings.Contains(res.Rewritten, "credentials:") ||
		!strings.Contains(res.Rewritten, "image: redis:7-alpine") || !strings.Contains(res.Rewritten, "# The web front end") {
		t.Fatalf("rewritten:\n%s", res.Rewritten)
	}
	for _, s := range res.Services {
		if s.Name == "web" && s.HubImage != "hub.example.com/ghcr.io/acme/web:2.3.1" {
			t.Errorf("web hub image %q", s.HubImage)
		}
	}
	// The install is real: listed, bound to the cluster and namespace.
	var in Install
	e.must("GET", "/api/v1/workspaces/tenant/installs/"+res.Install.Name, "", 200, &in)
	if in.Cluster != "provider-1" || in.Namespace != "lease-1" || len(in.Repos) != 3 {
		t.Fatalf("install %+v", in)
	}
	// Idempotent.
	res = SDLImport{}
	e.must("POST", path, jsonBody(t, SDLImportRequest{SDL: multi, Cluster: "provider-1", Namespace: "lease-1"}), 200, &res)
	if res.Install.Action != "unchanged" || res.Credentials[0].Action != "unchanged" || res.Credentials[1].Action != "unchanged" || res.Rewritten != "" {
		t.Fatalf("re-import %+v", res)
	}
	// The manifest form, as JSON, with the hub host from the request.
	var man json.RawMessage = []byte(sdlFixture(t, "manifest.json"))
	res = SDLImport{}
	e.must("POST", path, jsonBody(t, SDLImportRequest{Manifest: man, Cluster: "provider-1", Namespace: "lease-2", Install: "dseq-42", Rewrite: true}), 200, &res)
	if res.Format != "manifest" || res.Install.Name != "dseq-42" || !strings.Contains(res.Rewritten, `"image": "example.com/ghcr.io/acme/web:2.3.1"`) {
		t.Fatalf("manifest import %+v\n%s", res, res.Rewritten)
	}
	for _, pw := range []string{"ghp_MULTIsecretWEB0123456789", "dckr_pat_MULTIsecretAPI", "ghp_MANIFESTsecret0123", "dckr_pat_MANIFESTsecret"} {
		e.assertNoLeak(pw)
	}
}

func TestSDLImportBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"tenant"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"other"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"provider-1"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"single","workspace":"other"}`, 201, nil)
	const path = "/api/v1/workspaces/tenant/sdl-imports"
	e.must("POST", path, jsonBody(t, SDLImportRequest{SDL: sdlFixture(t, "ghcr.yaml"), Cluster: "provider-1", Namespace: "lease-1"}), 200, nil)
	e.must("POST", "/api/v1/workspaces/tenant/registries", `{"name":"corp-hub","host":"docker.io","username":"corp","password":"operator-SECRET-pw"}`, 201, nil)
	req := func(r SDLImportRequest) string {
		if r.Cluster == "" {
			r.Cluster = "provider-1"
		}
		if r.Namespace == "" {
			r.Namespace = "lease-9"
		}
		return jsonBody(t, r)
	}
	ecr := sdlFixture(t, "ecr.yaml")
	cases := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"no document", path, req(SDLImportRequest{}), 400, "exactly one"},
		{"both", path, req(SDLImportRequest{SDL: ecr, Manifest: json.RawMessage(`[]`)}), 400, "exactly one"},
		{"no cluster", path, `{"sdl":"x","namespace":"ns"}`, 400, "cluster: required"},
		{"no namespace", path, `{"sdl":"x","cluster":"provider-1"}`, 400, "namespace: required"},
		{"bad namespace", path, req(SDLImportRequest{SDL: ecr, Namespace: "Lease_1"}), 400, `namespace \"Lease_1\"`},
		{"bad install", path, req(SDLImportRequest{SDL: ecr, Install: "Bad"}), 400, `install \"Bad\"`},
		{"unknown cluster", path, req(SDLImportRequest{SDL: ecr, Cluster: "nope"}), 400, `cluster \"nope\" does not exist`},
		{"other workspace's cluster", path, req(SDLImportRequest{SDL: ecr, Cluster: "single"}), 400, `cluster \"single\" belongs to workspace \"other\"`},
		{"missing workspace", "/api/v1/workspaces/nope/sdl-imports", req(SDLImportRequest{SDL: ecr}), 404, `workspace \"nope\"`},
		{"missing password", path, req(SDLImportRequest{SDL: sdlFixture(t, "bad/missing-password.yaml")}), 400, "services.app.credentials.password (line 5): missing"},
		{"wrong types", path, req(SDLImportRequest{SDL: sdlFixture(t, "bad/wrong-types.yaml")}), 400, "services.api.credentials.username (line 11): want a string"},
		{"unknown host", path, req(SDLImportRequest{SDL: sdlFixture(t, "bad/unknown-host.yaml")}), 400, "services.userinfo.credentials.host (line 17): registry host must not contain user info"},
		{"not yaml", path, req(SDLImportRequest{SDL: sdlFixture(t, "bad/not-yaml.yaml")}), 400, "not valid YAML"},
		{"broken gcr key", path, req(SDLImportRequest{SDL: sdlFixture(t, "gcr.yaml")}), 400, "private_key does not parse"},
		{"huge sdl", path, req(SDLImportRequest{SDL: "version: \"2.0\"\n#" + strings.Repeat("x", 600<<10)}), 400, "the limit is 524288"},
		{"huge body", path, req(SDLImportRequest{SDL: strings.Repeat("x", 2<<20)}), 413, "request body too large"},
		{"manifest not a list", path, req(SDLImportRequest{Manifest: json.RawMessage(`{"groups":[]}`)}), 400, "manifest: want a list of groups"},
		{"conflicting operator credential", path, req(SDLImportRequest{SDL: sdlFixture(t, "dockerhub.yaml")}), 409, `covered equally by registry credentials \"corp-hub\"`},
		{"install of another namespace", path, req(SDLImportRequest{SDL: sdlFixture(t, "ghcr.yaml"), Namespace: "lease-2"}), 409, `install \"sdl-app\" already exists for cluster \"provider-1\", namespace \"lease-1\"`},
		{"bad hub host", path, req(SDLImportRequest{SDL: ecr, Rewrite: true, HubHost: "hub/path"}), 400, "rewrite: hub host"},
		{"unknown field", path, `{"sdl":"x","cluster":"provider-1","namespace":"ns","passwrd":"x"}`, 400, `unknown field \"passwrd\"`},
	}
	before := e.snapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.do("POST", c.path, c.body)
			if code != c.status || !strings.Contains(body, c.msg) {
				t.Errorf("%d %s, want %d with %s", code, body, c.status, c.msg)
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
	}
	for _, pw := range []string{"dckr_pat_abc123xyz", "BADsecret", "operator-SECRET-pw", "eyJwYXlsb2FkIjoiQUJDREVGIiwiZGF0YWtleSI6IlhZWiIsInZlcnNpb24iOiIyIn0="} {
		e.assertNoLeak(pw)
	}
}

// A rewrite leaves an image on a registry with a port alone, says so in
// the report's warnings, and imports the rest; credential_scope reaches
// the importer.
func TestSDLImportRewriteWarningsAndScope(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"tenant"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"provider-1"}`, 201, nil)
	const path = "/api/v1/workspaces/tenant/sdl-imports"
	src := "version: \"2.2\"\nx-owner: team-a\nservices:\n  a:\n    image: registry.corp:5000/x/a:1\n    credentials: {host: \"registry.corp:5000\", username: u, password: api-PORT-secret}\n" +
		"  b:\n    image: ghcr.io/x/b:1\n    credentials: {host: ghcr.io, username: u, password: api-GHCR-secret}\n"
	var res SDLImport
	e.must("POST", path, jsonBody(t, SDLImportRequest{SDL: src, Cluster: "provider-1", Namespace: "lease-1", Rewrite: true, HubHost: "hub.example.com",
		CredentialScope: "repository"}), 200, &res)
	if res.Version != "2.2" || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "registry.corp:5000") || !strings.Contains(res.Warnings[0], "left as it is") {
		t.Fatalf("import %+v", res)
	}
	if !strings.Contains(res.Rewritten, "image: registry.corp:5000/x/a:1") || !strings.Contains(res.Rewritten, "image: hub.example.com/ghcr.io/x/b:1") ||
		strings.Contains(res.Rewritten, "api-GHCR-secret") || strings.Contains(res.Rewritten, "api-PORT-secret") {
		t.Fatalf("rewritten:\n%s", res.Rewritten)
	}
	hosts := map[string]bool{}
	for _, c := range res.Credentials {
		hosts[c.Host] = true
	}
	if !hosts["ghcr.io/x/b"] || !hosts["registry.corp:5000/x/a"] {
		t.Fatalf("repository-scoped credentials %+v", res.Credentials)
	}
	e.must("POST", path, jsonBody(t, SDLImportRequest{SDL: src, Cluster: "provider-1", Namespace: "lease-1", CredentialScope: "cluster"}), 400, nil)
}
