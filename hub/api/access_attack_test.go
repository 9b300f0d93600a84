package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Regression tests of the adversarial review of per-workspace access: each
// is an attack that worked before its fix.

// A workspace deleted and created again under its name is a new tenant:
// its members must not read the pull audit of the old one (audit events
// name their workspace, they do not reference it).
func TestAuditOfDeletedNamesake(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	if err := e.st.AppendAudit(ctx, []store.AuditEvent{{Time: time.Now().Add(-time.Hour), Workspace: "a", Install: "old", Repository: "old-tenant/app"}}); err != nil {
		t.Fatal(err)
	}
	e.must("DELETE", "/api/v1/workspaces/a", "", 200, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"a"}`, 201, nil)
	e.addMember("a", "mallory", "owner")
	tok, _ := e.userToken("mallory", "")
	if err := e.st.AppendAudit(ctx, []store.AuditEvent{{Workspace: "a", Install: "new", Repository: "new-tenant/app"}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/audit?workspace=a", "/api/v1/audit?install=old"} {
		rec := e.send(req{method: "GET", path: path, bearer: tok})
		var got AuditEvents
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		for _, ev := range got.Events {
			if ev.Install == "old" {
				t.Errorf("GET %s: the new workspace's member reads the deleted namesake's event %+v", path, ev)
			}
		}
		if path == "/api/v1/audit" && (len(got.Events) != 1 || got.Events[0].Install != "new") {
			t.Errorf("GET %s: %+v, want the new workspace's event only", path, got.Events)
		}
	}
	// The admin still reads the whole trail.
	var all AuditEvents
	e.must("GET", "/api/v1/audit?workspace=a", "", 200, &all)
	if len(all.Events) != 2 {
		t.Errorf("admin: %d events, want 2", len(all.Events))
	}
}
