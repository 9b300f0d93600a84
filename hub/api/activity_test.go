package api

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
)

// TestActivityNeverHoldsSecrets does what operators do with secrets
// (registry passwords, their rotation, install tokens, API tokens, a
// console session) and checks that no activity row, no activity answer
// and no byte of the database holds any of them, while the rows say who
// did what.
func TestActivityNeverHoldsSecrets(t *testing.T) {
	e := newEnv(t)
	pw1, pw2 := distinctiveSecret(), distinctiveSecret()
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.addMember("acme", "olivia", "owner")
	e.addMember("acme", "otto", "operator")
	ownerTok, _ := e.userToken("olivia", "")
	opTok, _ := e.userToken("otto", "")
	secrets := []string{pw1, pw2, ownerTok, opTok}

	// Otto works through the console, Olivia with her token.
	cookie, csrf := e.login(opTok)
	secrets = append(secrets, cookie, csrf)
	steps := []req{
		{method: "POST", path: "/api/v1/workspaces/acme/registries", body: `{"name":"gh","host":"ghcr.io/acme","username":"bot","password":"` + pw1 + `"}`},
		{method: "PATCH", path: "/api/v1/workspaces/acme/registries/gh", body: `{"password":"` + pw2 + `"}`},
		{method: "POST", path: "/api/v1/workspaces/acme/registries/gh/test", body: `{}`},
		{method: "POST", path: "/api/v1/workspaces/acme/installs", body: `{"name":"web","repos":["ghcr.io/acme/*"]}`},
		{method: "POST", path: "/api/v1/workspaces/acme/installs/web/tokens", body: `{}`},
		{method: "POST", path: "/api/v1/workspaces/acme/registries/gh/disable"},
	}
	for _, s := range steps {
		s.cookie, s.csrf = cookie, csrf
		rec := e.send(s)
		if rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, rec.Code, rec.Body)
		}
		if strings.HasSuffix(s.path, "/tokens") {
			var tk Token
			if err := jsonUnmarshal(rec.Body.String(), &tk); err != nil || tk.Token == "" {
				t.Fatal(err)
			}
			secrets = append(secrets, tk.Token)
		}
	}
	rec := e.send(req{method: "POST", path: "/api/v1/tokens", bearer: ownerTok, body: `{"description":"ci"}`})
	var nt NewAPIToken
	if rec.Code != 201 || jsonUnmarshal(rec.Body.String(), &nt) != nil {
		t.Fatalf("token create: %d %s", rec.Code, rec.Body)
	}
	secrets = append(secrets, nt.Token)
	if rec := e.send(req{method: "POST", path: "/api/v1/workspaces/acme/members", bearer: ownerTok, body: `{"user":"vera","role":"viewer"}`}); rec.Code != 201 {
		t.Fatalf("member add: %d %s", rec.Code, rec.Body)
	}
	// A viewer's refused change is recorded too.
	vTok, _ := e.userToken("vera", "")
	secrets = append(secrets, vTok)
	if rec := e.send(req{method: "DELETE", path: "/api/v1/workspaces/acme/installs/web", bearer: vTok}); rec.Code != 403 {
		t.Fatalf("viewer delete: %d", rec.Code)
	}

	// The owner reads the workspace's activity; the operator may not.
	if rec := e.send(req{method: "GET", path: "/api/v1/workspaces/acme/activity", bearer: opTok}); rec.Code != 403 {
		t.Errorf("operator reads activity: %d", rec.Code)
	}
	rec = e.send(req{method: "GET", path: "/api/v1/workspaces/acme/activity", bearer: ownerTok})
	var al ActivityList
	if rec.Code != 200 || jsonUnmarshal(rec.Body.String(), &al) != nil {
		t.Fatalf("activity: %d %s", rec.Code, rec.Body)
	}
	type row struct{ who, action, target, result string }
	var got []row
	for _, a := range al.Activity {
		got = append(got, row{a.Principal, a.Action, a.TargetKind + " " + a.Target, a.Result})
		if a.Workspace != "acme" || a.RemoteAddr == "" || a.Time.IsZero() {
			t.Errorf("row %+v", a)
		}
	}
	want := []row{
		{"admin", "member.add", "member olivia", "ok"},
		{"admin", "member.add", "member otto", "ok"},
		{"otto", "registry.create", "registry gh", "ok"},
		{"otto", "registry.update", "registry gh", "ok"},
		{"otto", "registry.test", "registry gh", "ok"},
		{"otto", "install.create", "install web", "ok"},
		{"otto", "install_token.mint", "install_token web", "ok"},
		{"otto", "registry.disable", "registry gh", "ok"},
		{"olivia", "member.add", "member vera", "ok"},
		{"vera", "install.delete", "install web", "refused"},
	}
	if len(got) != len(want) {
		t.Fatalf("activity rows:\n%+v\nwant\n%+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Hub-wide rows (API tokens, sessions) are the admin's to read.
	var hub ActivityList
	e.must("GET", "/api/v1/activity", "", 200, &hub)
	var actions []string
	for _, a := range hub.Activity {
		actions = append(actions, a.Action)
	}
	for _, a := range []string{"api_token.create", "session.create", "workspace.create"} {
		if !strings.Contains(strings.Join(actions, " "), a) {
			t.Errorf("admin's activity lacks %s: %v", a, actions)
		}
	}

	// No secret anywhere: activity answers, rows, the database files.
	rows, err := e.st.QueryActivity(context.Background(), store.ActivityQuery{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, a := range rows {
		dump.WriteString(strings.Join([]string{a.Principal, a.TokenID, a.Action, a.TargetKind, a.Target, a.Workspace, a.RemoteAddr, a.Method, a.Path, a.Result}, "|") + "\n")
	}
	files, _ := filepath.Glob(e.dbPath + "*")
	for i, s := range secrets {
		if strings.Contains(dump.String(), s) || strings.Contains(rec.Body.String(), s) {
			t.Errorf("secret %d is in the activity log", i)
		}
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("secret %d is in database file %s", i, f)
			}
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("secret %d is in the log", i)
		}
	}
}
