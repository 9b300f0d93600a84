package api

import (
	"slices"
	"testing"
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
