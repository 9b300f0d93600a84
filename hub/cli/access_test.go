package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/internal/testlog"
)

// runAs runs the CLI with tok instead of the admin token.
func (h *hub) runAs(tok string, args ...string) (int, string, string) {
	h.t.Helper()
	root := NewRoot()
	root.SetArgs(append([]string{"--hub", h.url, "--token", tok}, args...))
	root.SetIn(strings.NewReader(""))
	var stdout, stderr testlog.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	code := Execute(context.Background(), root)
	h.mu.Lock()
	h.outputs = append(h.outputs, stdout.String(), stderr.String())
	h.mu.Unlock()
	return code, stdout.String(), stderr.String()
}

func TestMembersAndTokens(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	h.ok("", "workspace", "create", "other")
	out := h.ok("", "member", "add", "alice", "-w", "acme", "--role", "owner")
	if !strings.Contains(out, `user "alice" is owner of workspace "acme"`) {
		t.Errorf("member add: %s", out)
	}
	code, aliceTok, errOut := h.run("", "token", "create", "--user", "alice", "--expires-in", "720h")
	aliceTok = strings.TrimSpace(aliceTok)
	if code != 0 || !strings.HasPrefix(aliceTok, api.APITokenPrefix) || !strings.Contains(errOut, "shown this once") {
		t.Fatalf("token create --user: %d %q %s", code, aliceTok, errOut)
	}
	// Alice signs in with her token wherever the admin token goes.
	code, out, _ = h.runAs(aliceTok, "whoami")
	if code != 0 || !strings.Contains(out, "user alice") || !strings.Contains(out, "acme") || !strings.Contains(out, "owner") {
		t.Errorf("whoami: %d %s", code, out)
	}
	code, out, _ = h.runAs(aliceTok, "workspace", "list")
	if code != 0 || !strings.Contains(out, "acme") || strings.Contains(out, "other") {
		t.Errorf("alice's workspace list: %d %s", code, out)
	}
	// She manages her workspace's members; bob is created on the way.
	if code, out, errOut := h.runAs(aliceTok, "member", "add", "bob", "-w", "acme", "--role", "viewer"); code != 0 {
		t.Fatalf("alice adds bob: %d %s %s", code, out, errOut)
	}
	// Another workspace is invisible to her.
	if code, _, errOut := h.runAs(aliceTok, "member", "list", "-w", "other"); code != 1 || !strings.Contains(errOut, `404 Not Found: workspace "other" not found`) {
		t.Errorf("alice lists other's members: %d %s", code, errOut)
	}
	// She cannot make bob's token; the admin can.
	if code, _, errOut := h.runAs(aliceTok, "token", "create", "--user", "bob"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("alice makes bob's token: %d %s", code, errOut)
	}
	bobTok := strings.TrimSpace(h.ok("", "token", "create", "--user", "bob"))
	// Bob, a viewer, reads but cannot change.
	if code, _, errOut := h.runAs(bobTok, "install", "create", "-w", "acme", "--name", "web", "--all-repos"); code != 1 || !strings.Contains(errOut, "403 Forbidden") || !strings.Contains(errOut, "needs operator") {
		t.Errorf("viewer creates an install: %d %s", code, errOut)
	}
	if code, _, errOut := h.runAs(bobTok, "install", "list", "-w", "acme"); code != 0 {
		t.Errorf("viewer lists installs: %d %s", code, errOut)
	}
	// Roles change.
	h.ok("", "member", "update", "bob", "-w", "acme", "--role", "operator")
	if code, _, errOut := h.runAs(bobTok, "install", "create", "-w", "acme", "--name", "web", "--all-repos"); code != 0 {
		t.Errorf("operator creates an install: %d %s", code, errOut)
	}
	out = h.ok("", "member", "list", "-w", "acme")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, "operator") {
		t.Errorf("member list: %s", out)
	}
	// The last owner stays (for owners).
	if code, _, errOut := h.runAs(aliceTok, "member", "remove", "alice", "-w", "acme"); code != 1 || !strings.Contains(errOut, "last owner") {
		t.Errorf("alice removes herself: %d %s", code, errOut)
	}

	// Tokens: list, create own, revoke.
	code, own, _ := h.runAs(bobTok, "token", "create", "--never-expires", "--description", "ci")
	own = strings.TrimSpace(own)
	if code != 0 || !strings.HasPrefix(own, api.APITokenPrefix) {
		t.Fatalf("bob's own token: %d %q", code, own)
	}
	code, out, _ = h.runAs(bobTok, "token", "list", "-o", "json")
	var ts []api.APIToken
	if code != 0 || json.Unmarshal([]byte(out), &ts) != nil || len(ts) != 2 || ts[0].User != "bob" {
		t.Fatalf("bob's token list: %d %s", code, out)
	}
	var ciID string
	for _, tk := range ts {
		if tk.Description == "ci" {
			ciID = tk.ID
		}
	}
	if code, _, errOut := h.runAs(aliceTok, "token", "revoke", ciID); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("alice revokes bob's token: %d %s", code, errOut)
	}
	if code, out, errOut := h.runAs(bobTok, "token", "revoke", ciID); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("bob revokes his token: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := h.runAs(own, "whoami"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("revoked token: %d %s", code, errOut)
	}
	out = h.ok("", "token", "list")
	if !strings.Contains(out, "revoked") || strings.Count(out, "tok_") != 3 {
		t.Errorf("admin's token list:\n%s", out)
	}

	// Activity: alice (owner) reads acme's; bob (operator) cannot; the
	// admin reads the whole hub's.
	code, out, errOut = h.runAs(aliceTok, "activity", "-w", "acme")
	for _, want := range []string{"member.add", "user:alice", "install.create", "user:bob", "refused (403)", "ok (201)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("alice's activity lacks %q: %d %s %s", want, code, out, errOut)
		}
	}
	if code, _, errOut := h.runAs(bobTok, "activity", "-w", "acme"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("operator reads activity: %d %s", code, errOut)
	}
	if code, _, errOut := h.runAs(aliceTok, "activity"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("member reads the hub's activity: %d %s", code, errOut)
	}
	out = h.ok("", "activity")
	if !strings.Contains(out, "workspace.create") || !strings.Contains(out, "api_token.revoke") {
		t.Errorf("admin activity:\n%s", out)
	}
	// Deleting bob ends his tokens; only the admin may.
	if code, _, errOut := h.runAs(aliceTok, "user", "delete", "bob"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("alice deletes bob: %d %s", code, errOut)
	}
	h.ok("", "user", "delete", "bob")
	if code, _, _ := h.runAs(bobTok, "whoami"); code != 1 {
		t.Errorf("deleted user's token: %d", code)
	}
	// Tokens appear on stdout once each, never elsewhere.
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tok := range []string{aliceTok, bobTok, own} {
		n := 0
		for _, o := range h.outputs {
			n += strings.Count(o, tok)
		}
		if n != 1 {
			t.Errorf("token printed %d times, want once", n)
		}
		if strings.Contains(h.logs.String(), tok) {
			t.Error("hub log holds a token")
		}
	}
}

func TestAccessUsageErrors(t *testing.T) {
	h := newHub(t)
	for _, args := range [][]string{
		{"member", "add", "alice", "-w", "acme"},
		{"member", "add", "alice", "--role", "owner"},
		{"member", "list"},
		{"member", "update", "alice", "-w", "acme"},
		{"token", "create", "--expires-in", "1h", "--never-expires"},
		{"token", "create", "--expires-in", "5s"},
		{"token", "revoke"},
	} {
		if code, _, errOut := h.run("", args...); code != ExitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

func TestAccessHelp(t *testing.T) {
	for _, args := range [][]string{
		{"token", "--help"}, {"token", "create", "--help"}, {"member", "add", "--help"}, {"member", "update", "--help"},
		{"user", "delete", "--help"}, {"whoami", "--help"}, {"activity", "--help"},
	} {
		root := NewRoot()
		root.SetArgs(args)
		var out, errOut strings.Builder
		root.SetOut(&out)
		root.SetErr(&errOut)
		if code := Execute(context.Background(), root); code != 0 {
			t.Errorf("%v: exit %d %s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), "Example") || !strings.Contains(out.String(), "pullgate-hub ") {
			t.Errorf("%v: help without examples:\n%s", args, out.String())
		}
	}
	root := NewRoot()
	root.SetArgs([]string{"--help"})
	var out strings.Builder
	root.SetOut(&out)
	Execute(context.Background(), root)
	for _, want := range []string{"member", "token", "whoami", "activity", "API token"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("root help lacks %q", want)
		}
	}
}
