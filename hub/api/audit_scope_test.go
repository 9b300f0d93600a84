package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// A member's audit statistics and export hold its own workspaces' events
// only, and another workspace answers as one that does not exist, as the
// event query does.
func TestAuditStatsAndExportScoped(t *testing.T) {
	e := newAccessEnv(t)
	now := e.now
	if err := e.st.AppendAudit(context.Background(), []store.AuditEvent{
		{Time: now.Add(-time.Minute), Workspace: "a", Install: "a-secret-install", Upstream: "a.example", Repository: "a-org/app", Kind: "manifest", Status: 200, Bytes: 7},
		{Time: now.Add(-time.Minute), Workspace: "b", Install: "b-web", Upstream: "b.example", Repository: "b-org/app", Kind: "manifest", Status: 200, Bytes: 9},
	}); err != nil {
		t.Fatal(err)
	}
	get := func(who, path string) (int, string) {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+e.tokens[who])
		e.h.ServeHTTP(rec, r)
		return rec.Code, rec.Body.String()
	}
	for _, c := range []struct{ path, own, other string }{
		{"/api/v1/audit/stats?since=1h", "b-web", "a-secret-install"},
		{"/api/v1/audit/stats?since=1h&by=upstream", "b.example", "a.example"},
		{"/api/v1/audit/export", "b-org", "a-org"},
	} {
		path := c.path
		code, body := get("owner-b", path)
		if code != 200 || !strings.Contains(body, c.own) {
			t.Errorf("owner-b %s: %d %s", path, code, body)
		}
		for _, a := range []string{"a-secret-install", "a.example", "a-org"} {
			if strings.Contains(body, a) {
				t.Errorf("owner-b %s shows %q of workspace a: %s", path, a, body)
			}
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if code, body := get("owner-b", path+sep+"workspace=a"); code != 404 || !strings.Contains(body, `workspace \"a\" not found`) {
			t.Errorf("owner-b %s of a: %d %s", path, code, body)
		}
		if code, body := get("admin", path); code != 200 || !strings.Contains(body, c.other) {
			t.Errorf("admin %s: %d %s", path, code, body)
		}
	}
}
