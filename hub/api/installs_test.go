package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

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
