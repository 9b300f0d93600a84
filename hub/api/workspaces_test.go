package api

import (
	"strings"
	"testing"
)

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
