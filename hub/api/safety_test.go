package api

import (
	"slices"
	"strings"
	"testing"
)

// Operator actions that would silently remove or re-route more than the
// operator sees (issue 11, items 3 to 5 and 11).

func TestDeleteWorkspaceRefusedWhileInUse(t *testing.T) {
	rv := &recordingRevoker{}
	e := newEnv(t, func(d *Deps) { d.Revoker = rv })
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io","username":"bot","password":"p"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","cluster":"edge","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"api","cluster":"shared","namespace":"shop","all_repos":true}`, 201, nil)
	before := e.snapshot()

	for _, q := range []string{"", "?force=false"} {
		code, body := e.do("DELETE", "/api/v1/workspaces/acme"+q, "")
		if code != 409 {
			t.Fatalf("delete%s in use: %d %s", q, code, body)
		}
		for _, want := range []string{`workspace \"acme\" still has 2 install(s) (api, web)`, "1 cluster(s) (edge, 0 node(s))", "1 registry credential(s) (gh)", "force"} {
			if !strings.Contains(body, want) {
				t.Errorf("refusal %s does not say %q", body, want)
			}
		}
	}
	if code, body := e.do("DELETE", "/api/v1/workspaces/acme?force=yes", ""); code != 400 || !strings.Contains(body, "want true or false") {
		t.Fatalf("bad force: %d %s", code, body)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("refused delete changed state:\n%s\nvs\n%s", before, after)
	}
	if len(rv.calls) > 3 { // the credential and two install notices
		t.Fatalf("refused delete pushed %v", rv.calls)
	}
	rv.calls = nil

	var res DeleteWorkspaceResult
	e.must("DELETE", "/api/v1/workspaces/acme?force=true", "", 200, &res)
	if !slices.Equal(res.Installs, []string{"api", "web"}) || !slices.Equal(res.Registries, []string{"gh"}) ||
		!slices.Equal(res.Clusters, []DeletedCluster{{Name: "edge"}}) {
		t.Fatalf("forced delete = %+v", res)
	}
	// The workspace's own cluster went with it (its agents are told), the
	// shared one stays; every install is revoked.
	e.must("GET", "/api/v1/clusters/edge", "", 404, nil)
	e.must("GET", "/api/v1/clusters/shared", "", 200, nil)
	if got := strings.Join(rv.calls, ","); got != "cluster,install api,install web" {
		t.Fatalf("pushes after a forced delete: %s", got)
	}
	// A re-created workspace can create a cluster of the same name.
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"acme"}`, 201, nil)
	// Credentials alone do not need force.
	e.must("POST", "/api/v1/workspaces", `{"name":"creds"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/creds/registries", `{"name":"gh","host":"ghcr.io","username":"bot","password":"p"}`, 201, nil)
	e.must("DELETE", "/api/v1/workspaces/creds", "", 200, &res)
	if !slices.Equal(res.Registries, []string{"gh"}) || len(res.Installs) != 0 || len(res.Clusters) != 0 {
		t.Fatalf("delete with credentials only = %+v", res)
	}
}

func TestRegistryDuplicateHostAndReroute(t *testing.T) {
	e := newEnv(t)
	regs := "/api/v1/workspaces/acme/registries"
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", regs, `{"name":"gh","host":"ghcr.io","username":"bot","password":"right"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","repos":["ghcr.io/acme/*"]}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"all","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"other","repos":["ghcr.io/other/*"]}`, 201, nil)
	before := e.snapshot()

	// The same host again, in any spelling that normalises to it.
	for _, host := range []string{"ghcr.io", "https://ghcr.io", "GHCR.io/"} {
		code, body := e.do("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "gh2", Host: host, Username: "bot", Password: "wrong"}))
		if code != 409 || !strings.Contains(body, `registry credential \"gh\" of workspace \"acme\" already has host ghcr.io`) {
			t.Fatalf("duplicate %s: %d %s", host, code, body)
		}
		if strings.Contains(body, "wrong") || strings.Contains(body, "right") {
			t.Fatalf("refusal shows a password: %s", body)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("refused add changed state:\n%s\nvs\n%s", before, after)
	}
	// The same host in another workspace is fine.
	e.must("POST", "/api/v1/workspaces", `{"name":"beta"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/beta/registries", `{"name":"gh","host":"ghcr.io","username":"bot","password":"p"}`, 201, nil)

	// A more specific prefix re-routes the pulls of "web" and "all", not
	// those of "other".
	var reg Registry
	e.must("POST", regs, `{"name":"gh-acme","host":"ghcr.io/acme","username":"bot2","password":"p2"}`, 201, &reg)
	if len(reg.Warnings) != 1 {
		t.Fatalf("re-route warnings %q", reg.Warnings)
	}
	w := reg.Warnings[0]
	for _, want := range []string{`pulls under ghcr.io/acme now use registry "gh-acme" instead of "gh" (ghcr.io)`, "web (ghcr.io/acme/*)", "all (all repositories)"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q does not say %q", w, want)
		}
	}
	if strings.Contains(w, "other") {
		t.Errorf("warning names an install it does not re-route: %q", w)
	}
	// A prefix no install pulls from, or one that re-routes nothing
	// (nothing less specific covers it), warns about nothing.
	e.must("POST", regs, `{"name":"gh-unused","host":"ghcr.io/unused","username":"bot","password":"p"}`, 201, &reg)
	if len(reg.Warnings) != 1 || !strings.Contains(reg.Warnings[0], "all (all repositories)") || strings.Contains(reg.Warnings[0], "web") {
		t.Fatalf("unused prefix warnings %q", reg.Warnings)
	}
	var quay Registry
	e.must("POST", regs, `{"name":"quay","host":"quay.io","username":"bot","password":"p"}`, 201, &quay)
	if len(quay.Warnings) != 0 {
		t.Fatalf("new host warnings %q", quay.Warnings)
	}
}

func TestInstallBroadGrantExplicitAndUncoveredRepos(t *testing.T) {
	e := newEnv(t)
	ins := "/api/v1/workspaces/acme/installs"
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io/acme","username":"bot","password":"p"}`, 201, nil)

	before := e.snapshot()
	for _, body := range []string{`{"name":"x","repos":["ghcr.io/acme/*"],"all_repos":true}`} {
		if code, b := e.do("POST", ins, body); code != 400 || !strings.Contains(b, "repos and all_repos exclude each other") {
			t.Fatalf("create %s: %d %s", body, code, b)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatal("refused create changed state")
	}

	var in Install
	e.must("POST", ins, `{"name":"all","all_repos":true}`, 201, &in)
	if len(in.Repos) != 0 || len(in.Warnings) != 0 {
		t.Fatalf("all repos: %+v", in)
	}
	// A typo of the host, and a repository outside the credential's
	// prefix: both warned about, by pattern; the covered one is not.
	e.must("POST", ins, `{"name":"web","repos":["ghrc.io/acme/*","ghcr.io/acme/web","ghcr.io/other/*"]}`, 201, &in)
	if len(in.Warnings) != 2 || !strings.Contains(in.Warnings[0], `repository pattern ghrc.io/acme/*: no registry credential of workspace "acme" covers it (it has ghcr.io/acme)`) ||
		!strings.Contains(in.Warnings[1], "ghcr.io/other/*") {
		t.Fatalf("warnings %q", in.Warnings)
	}
	// Shown on create and update, not on reads.
	var got Install
	e.must("GET", ins+"/web", "", 200, &got)
	if len(got.Warnings) != 0 {
		t.Fatalf("get shows warnings %q", got.Warnings)
	}
	e.must("PATCH", ins+"/web", `{"repos":["ghcr.io/acme/web","docker.io/nginx"]}`, 200, &in)
	if len(in.Warnings) != 1 || !strings.Contains(in.Warnings[0], "docker.io/library/nginx") {
		t.Fatalf("update warnings %q", in.Warnings)
	}
	gen := in.Generation
	var all Install
	e.must("PATCH", ins+"/web", `{"all_repos":true}`, 200, &all)
	if len(all.Repos) != 0 || all.Generation != gen+1 || len(all.Warnings) != 0 {
		t.Fatalf("update to all repos: %+v", all)
	}
	for body, want := range map[string]string{
		`{}`: "nothing to update: give repos, all_repos, cluster, namespace, service_account or akash",
		`{"repos":["ghcr.io/acme/*"],"all_repos":true}`: "repos and all_repos exclude each other",
	} {
		if code, b := e.do("PATCH", ins+"/web", body); code != 400 || !strings.Contains(b, want) {
			t.Fatalf("update %s: %d %s", body, code, b)
		}
	}
}

func TestInstallUpdateBindsCluster(t *testing.T) {
	rv := &recordingRevoker{}
	e := newEnv(t, func(d *Deps) { d.Revoker = rv })
	ins := "/api/v1/workspaces/acme/installs"
	for _, ws := range []string{"acme", "beta"} {
		e.must("POST", "/api/v1/workspaces", `{"name":"`+ws+`"}`, 201, nil)
	}
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"beta-edge","workspace":"beta"}`, 201, nil)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/beta/installs", `{"name":"b","cluster":"shared","namespace":"taken","all_repos":true}`, 201, nil)
	var in Install
	e.must("POST", ins, `{"name":"web","all_repos":true}`, 201, &in)
	before := e.snapshot()
	for body, want := range map[string]string{
		`{"cluster":"nope"}`:                            `cluster \"nope\" does not exist`,
		`{"cluster":"beta-edge"}`:                       `cluster \"beta-edge\" belongs to workspace \"beta\"`,
		`{"cluster":"shared"}`:                          `cluster \"shared\" is shared: the install needs --namespace`,
		`{"cluster":"shared","namespace":"taken"}`:      `namespace \"taken\" on shared cluster \"shared\" is taken by another workspace`,
		`{"cluster":"Edge"}`:                            `cluster \"Edge\": must be`,
		`{"cluster":"shared","namespace":"Bad_NS"}`:     "not a Kubernetes namespace name",
		`{"cluster":"edge","service_account":"puller"}`: "a service account needs a namespace",
	} {
		code, b := e.do("PATCH", ins+"/web", body)
		if code/100 != 4 || !strings.Contains(b, want) {
			t.Errorf("update %s: %d %s, want %q", body, code, b, want)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("refused binding changed state:\n%s\nvs\n%s", before, after)
	}
	rv.calls = nil

	var got Install
	e.must("PATCH", ins+"/web", `{"cluster":"edge"}`, 200, &got)
	if got.Cluster != "edge" || got.Generation != in.Generation+1 || len(got.Repos) != 0 {
		t.Fatalf("bound: %+v", got)
	}
	e.must("PATCH", ins+"/web", `{"cluster":"shared","namespace":"shop","service_account":"puller"}`, 200, &got)
	if got.Cluster != "shared" || got.Namespace != "shop" || got.ServiceAccount != "puller" || got.Generation != in.Generation+2 {
		t.Fatalf("moved: %+v", got)
	}
	// Each move revokes at the old cluster and notifies the new one.
	if c := strings.Join(rv.calls, ","); c != "install web,notice web,install web,notice web" {
		t.Fatalf("pushes %s", c)
	}
	e.must("PATCH", ins+"/web", `{"cluster":""}`, 200, &got)
	if got.Cluster != "" || got.Namespace != "shop" {
		t.Fatalf("unbound: %+v", got)
	}
}
