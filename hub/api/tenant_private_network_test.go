package api

import (
	"strings"
	"testing"
)

// TestTenantPrivateNetworkAdminOnly: on a hub with Akash tenant
// self-service anyone with a key owns a workspace, so only the admin lets
// a credential reach private addresses or moves one that may. Without
// self-service, workspace members keep doing it as before.
func TestTenantPrivateNetworkAdminOnly(t *testing.T) {
	const private = `{"name":"lan","host":"registry.corp","endpoint":"http://10.0.0.5:5000","allow_private_network":true,"kind":"basic","username":"u","password":"p"}`
	e := newEnv(t, withTenants(testHubURL))
	l := e.tenantLogin(tenantKeyA, tenantAddrA, "")
	tenant := "Bearer " + l.Token
	regs := "/api/v1/workspaces/" + l.Workspace + "/registries"

	before := e.snapshot()
	if code, b := e.doAuth("POST", regs, private, tenant); code != 403 || !strings.Contains(b, "allow_private_network") {
		t.Fatalf("tenant creates a private-network credential: %d %s, want 403", code, b)
	}
	if e.snapshot() != before {
		t.Fatal("the refused create changed the store")
	}
	if code, b := e.doAuth("POST", regs, `{"name":"pub","host":"ghcr.io/me","kind":"basic","username":"u","password":"p"}`, tenant); code != 201 {
		t.Fatalf("tenant creates a public credential: %d %s", code, b)
	}
	if code, b := e.doAuth("PATCH", regs+"/pub", `{"allow_private_network":true}`, tenant); code != 403 {
		t.Fatalf("tenant turns on allow_private_network: %d %s, want 403", code, b)
	}
	if code, b := e.doAuth("PATCH", regs+"/pub", `{"endpoint":"https://mirror.example.com"}`, tenant); code != 200 {
		t.Fatalf("tenant moves a public credential: %d %s", code, b)
	}

	// The admin opens it; the tenant may rotate its password but not
	// point it elsewhere.
	e.must("POST", regs, private, 201, nil)
	for _, body := range []string{`{"endpoint":"http://10.0.0.6:5000"}`, `{"realm_hosts":["auth.corp.example"]}`} {
		if code, b := e.doAuth("PATCH", regs+"/lan", body, tenant); code != 403 {
			t.Errorf("tenant PATCH %s of an admin's private-network credential: %d %s, want 403", body, code, b)
		}
	}
	if code, b := e.doAuth("PATCH", regs+"/lan", `{"password":"rotated"}`, tenant); code != 200 {
		t.Fatalf("tenant rotates the password: %d %s", code, b)
	}
	if code, b := e.doAuth("PATCH", regs+"/lan", `{"allow_private_network":false}`, tenant); code != 200 {
		t.Fatalf("tenant turns allow_private_network off: %d %s", code, b)
	}

	// Without self-service: a workspace owner may (unchanged).
	e2 := newEnv(t)
	e2.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e2.addMember("acme", "alice", "owner")
	tok, _ := e2.userToken("alice", "")
	if code, b := e2.doAuth("POST", "/api/v1/workspaces/acme/registries", private, "Bearer "+tok); code != 201 {
		t.Fatalf("owner on a hub without tenants: %d %s", code, b)
	}
}
