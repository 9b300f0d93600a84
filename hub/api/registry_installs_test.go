package api

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
)

// The registry views name the installs a toggle of the credential
// affects: those whose allow-list reaches its host.
func TestRegistryAffectedInstalls(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io","username":"u","password":"pw-1"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"hub","host":"docker.io","username":"u","password":"pw-2"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","repos":["ghcr.io/acme/*"]}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"everything","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"cache","repos":["docker.io/library/redis"]}`, 201, nil)
	want := map[string][]string{"gh": {"everything", "web"}, "hub": {"cache", "everything"}}
	var list RegistryList
	e.must("GET", "/api/v1/workspaces/acme/registries", "", 200, &list)
	for _, r := range list.Registries {
		got := slices.Sorted(slices.Values(r.Installs))
		if !slices.Equal(got, want[r.Name]) {
			t.Errorf("registry %s: installs %q, want %q", r.Name, got, want[r.Name])
		}
	}
	var one Registry
	e.must("GET", "/api/v1/workspaces/acme/registries/gh", "", 200, &one)
	if got := slices.Sorted(slices.Values(one.Installs)); !slices.Equal(got, want["gh"]) {
		t.Errorf("get gh: installs %q", got)
	}
}

// Listing registries must not cost credentials × installs × patterns
// parses: a tenant chooses all three (MaxRepos patterns per install), and
// 100 credentials by 100 installs of 256 patterns took 12 s of hub CPU per
// listing when every credential parsed every pattern again. Each pattern
// is parsed once and a credential only meets its own host's patterns, so
// one more credential on another host costs next to nothing.
func TestRegistryAffectedInstallsCost(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	const installs = 8
	for i := range installs {
		repos := make([]string, MaxRepos)
		for j := range repos {
			repos[j] = fmt.Sprintf("ghcr.io/org%d/app%d/*", i, j)
		}
		e.must("POST", "/api/v1/workspaces/acme/installs", jsonBody(t, map[string]any{"name": fmt.Sprintf("web%d", i), "repos": repos}), 201, nil)
	}
	creds := make([]store.Credential, 21)
	for i := range creds {
		creds[i] = store.Credential{Name: fmt.Sprintf("r%d", i), Host: fmt.Sprintf("registry%d.example.com", i)}
	}
	s := e.h.(*server)
	ctx := context.Background()
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(3, func() { s.registryInstalls(ctx, "acme", creds[:n]) })
	}
	perCred := (allocs(21) - allocs(1)) / 20
	if limit := float64(installs * MaxRepos / 8); perCred > limit {
		t.Errorf("each credential costs %.0f allocations with %d installs of %d patterns: the patterns are parsed per credential (want < %.0f)",
			perCred, installs, MaxRepos, limit)
	}
	got := s.registryInstalls(ctx, "acme", []store.Credential{{Name: "gh", Host: "ghcr.io/org3"}})
	if !slices.Equal(got["gh"], []string{"web3"}) {
		t.Errorf("ghcr.io/org3 reaches %q, want [web3]", got["gh"])
	}
}
