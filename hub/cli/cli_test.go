package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/upstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

const admin = "cli-test-admin-token"

type hub struct {
	t       *testing.T
	url     string
	st      *store.SQL
	sealer  *secrets.Sealer
	keyring *token.Keyring
	logs    *testlog.Buffer

	mu      sync.Mutex
	check   upstream.CheckResult
	outputs []string // every stdout and stderr, for the leak check
}

func newHub(t *testing.T) *hub {
	t.Helper()
	return newHubWith(t, nil)
}

// newHubWith is newHub with the API's dependencies changed by opt.
func newHubWith(t *testing.T, opt func(*api.Deps)) *hub {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	sealer, _ := secrets.New(key)
	kr := token.NewKeyring()
	k, _ := token.NewKey()
	kr.Add(k, true)
	h := &hub{t: t, st: st, sealer: sealer, keyring: kr, logs: &testlog.Buffer{}}
	d := api.Deps{
		Store: st, Sealer: sealer, Keyring: kr, AdminToken: admin,
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
		Check: func(ctx context.Context, c store.Credential, s credential.Secret, repo string) upstream.CheckResult {
			h.mu.Lock()
			defer h.mu.Unlock()
			r := h.check
			r.Upstream = c.Host
			if repo != "" {
				r.Repository = c.Host + "/" + repo
			}
			return r
		},
	}
	if opt != nil {
		opt(&d)
	}
	srv := httptest.NewServer(api.New(d))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *hub) setCheck(r upstream.CheckResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check = r
}

// run executes the CLI against the hub with stdin and returns the exit
// code, stdout and stderr.
func (h *hub) run(stdin string, args ...string) (int, string, string) {
	h.t.Helper()
	return h.runCtx(context.Background(), stdin, &testlog.Buffer{}, args...)
}

func (h *hub) runCtx(ctx context.Context, stdin string, stdout *testlog.Buffer, args ...string) (int, string, string) {
	root := NewRoot()
	root.SetArgs(append([]string{"--hub", h.url, "--token", admin}, args...))
	root.SetIn(strings.NewReader(stdin))
	var stderr testlog.Buffer
	root.SetOut(stdout)
	root.SetErr(&stderr)
	code := Execute(ctx, root)
	h.mu.Lock()
	h.outputs = append(h.outputs, stdout.String(), stderr.String())
	h.mu.Unlock()
	return code, stdout.String(), stderr.String()
}

// ok runs the CLI and fails the test unless it exits 0.
func (h *hub) ok(stdin string, args ...string) string {
	h.t.Helper()
	code, out, errOut := h.run(stdin, args...)
	if code != 0 {
		h.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func secret() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "UPSTREAM-SECRET-" + hex.EncodeToString(b[:])
}

func TestWorkflow(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	pw1, pw2 := secret(), secret()

	if out := h.ok("", "workspace", "create", "acme"); !strings.Contains(out, `workspace "acme" created`) {
		t.Errorf("create: %q", out)
	}
	code, out, errOut := h.run("", "workspace", "create", "acme")
	if code != 1 || out != "" || errOut != "error: create workspace \"acme\": 409 Conflict: workspace \"acme\" already exists\n" {
		t.Errorf("duplicate: exit %d stdout %q stderr %q", code, out, errOut)
	}
	h.ok("", "workspace", "create", "beta")
	out = h.ok("", "workspace", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "acme ") || !strings.HasPrefix(lines[2], "beta ") {
		t.Errorf("workspace list:\n%s", out)
	}
	var wss []api.Workspace
	if err := json.Unmarshal([]byte(h.ok("", "workspace", "list", "-o", "json")), &wss); err != nil || len(wss) != 2 {
		t.Errorf("workspace list json: %v %+v", err, wss)
	}

	// Registry: the password only on stdin, one newline trimmed.
	out = h.ok(pw1+"\n", "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io/acme", "--username", "bot", "--password-stdin")
	if !strings.Contains(out, `registry "gh" added`) {
		t.Errorf("add: %q", out)
	}
	c, err := h.st.GetCredential(ctx, "acme", "gh")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := h.st.CredentialSecret(ctx, c.ID, c.Version)
	if s, err := credential.Open(h.sealer, c, sealed); err != nil || s.Password != pw1 {
		t.Fatalf("stored password: %v, match %v", err, s.Password == pw1)
	}
	h.ok(pw1, "--output", "json", "registry", "add", "-w", "acme", "--name", "hub", "--host", "docker.io", "--kind", "token", "--password-stdin")

	out = h.ok("", "registry", "list", "--workspace", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "VERSION") ||
		!strings.Contains(lines[1], "ghcr.io/acme") || !strings.Contains(lines[2], "docker.io") {
		t.Errorf("registry list:\n%s", out)
	}
	var regs []api.Registry
	if err := json.Unmarshal([]byte(h.ok("", "registry", "list", "-w", "acme", "-o", "json")), &regs); err != nil ||
		len(regs) != 2 || regs[0].Name != "gh" || regs[0].Username != "bot" || regs[1].Kind != "token" {
		t.Errorf("registry list json: %v %+v", err, regs)
	}
	if out := h.ok("", "registry", "get", "-w", "acme", "gh"); !strings.Contains(out, "ghcr.io/acme") {
		t.Errorf("registry get: %s", out)
	}

	// New password: new version. --insecure=bool.
	out = h.ok(pw2+"\r\n", "registry", "update", "-w", "acme", "gh", "--password-stdin")
	if !strings.Contains(out, "secret version 2") {
		t.Errorf("update: %q", out)
	}
	c, _ = h.st.GetCredential(ctx, "acme", "gh")
	sealed, _ = h.st.CredentialSecret(ctx, c.ID, c.Version)
	if s, _ := credential.Open(h.sealer, c, sealed); s.Password != pw2 {
		t.Error("updated password not stored exactly (one trailing CRLF trimmed)")
	}
	var reg api.Registry
	_ = json.Unmarshal([]byte(h.ok("", "registry", "update", "-w", "acme", "gh", "--insecure=true", "-o", "json")), &reg)
	if !reg.Insecure || reg.Version != 2 {
		t.Errorf("insecure update: %+v", reg)
	}
	_ = json.Unmarshal([]byte(h.ok("", "registry", "update", "-w", "acme", "gh", "--insecure=false", "-o", "json")), &reg)
	if reg.Insecure {
		t.Errorf("insecure=false: %+v", reg)
	}
	reg = api.Registry{}
	_ = json.Unmarshal([]byte(h.ok("", "registry", "update", "-w", "acme", "gh", "--allow-private-network",
		"--realm-host", "auth.corp", "--realm-host", "sso.corp:8443", "-o", "json")), &reg)
	if !reg.AllowPrivateNetwork || strings.Join(reg.RealmHosts, " ") != "auth.corp sso.corp:8443" {
		t.Errorf("network policy update: %+v", reg)
	}
	reg = api.Registry{}
	_ = json.Unmarshal([]byte(h.ok("", "registry", "update", "-w", "acme", "gh", "--allow-private-network=false", "--realm-host", "", "-o", "json")), &reg)
	if reg.AllowPrivateNetwork || len(reg.RealmHosts) != 0 {
		t.Errorf("network policy cleared: %+v", reg)
	}
	h.ok("", "registry", "disable", "-w", "acme", "gh")
	_ = json.Unmarshal([]byte(h.ok("", "registry", "get", "-w", "acme", "gh", "-o", "json")), &reg)
	if reg.Enabled {
		t.Error("registry disable did not disable")
	}
	h.ok("", "registry", "enable", "-w", "acme", "gh")

	// Registry test: steps printed, exit 1 on a failed handshake.
	h.setCheck(upstream.CheckResult{Reachable: true, AuthScheme: "bearer", Authenticated: true, CanPull: true})
	out = h.ok("", "registry", "test", "-w", "acme", "gh", "--repo", "acme/app")
	if !strings.Contains(out, "reach ghcr.io/acme") || !strings.Contains(out, "list tags of ghcr.io/acme/acme/app") ||
		strings.Count(out, " ok ") != 3 {
		t.Errorf("registry test:\n%s", out)
	}
	rejected := "authenticate: the upstream rejected the username or password (/v2/ answered 401 Unauthorized)"
	h.setCheck(upstream.CheckResult{Reachable: true, AuthScheme: "basic", Error: rejected})
	code, out, errOut = h.run("", "registry", "test", "-w", "acme", "gh")
	if code != 1 || !strings.Contains(errOut, "test failed: "+rejected) {
		t.Errorf("failed registry test: exit %d\n%s\n%s", code, out, errOut)
	}
	// The failed step's DETAIL says why; the steps after it are skipped.
	if !regexp.MustCompile(`(?m)^authenticate +FAILED +the upstream rejected the username or password \(/v2/ answered 401 Unauthorized\)$`).MatchString(out) {
		t.Errorf("failed step without its detail:\n%s", out)
	}
	h.setCheck(upstream.CheckResult{Reachable: true, AuthScheme: "bearer", Authenticated: true, Error: "list tags of ghcr.io/acme/nope: 404 Not Found"})
	if _, out, _ = h.run("", "registry", "test", "-w", "acme", "gh", "--repo", "nope"); !regexp.MustCompile(`(?m)^list tags of ghcr.io/acme/nope +FAILED +404 Not Found$`).MatchString(out) {
		t.Errorf("failed list step without its detail:\n%s", out)
	}

	// Clusters: a join token on stdout, shown once.
	join := strings.TrimSpace(h.ok("", "cluster", "create", "prod"))
	if !strings.HasPrefix(join, "pgj1.") {
		t.Errorf("cluster create printed %q, want a join token", join)
	}
	if out := h.ok("", "cluster", "list"); !strings.Contains(out, "prod") || !strings.Contains(out, "(shared)") || strings.Contains(out, join) {
		t.Errorf("cluster list:\n%s", out)
	}
	if code, _, errOut := h.run("", "install", "create", "-w", "acme", "--name", "x", "--all-repos", "--cluster", "prod"); code != 1 || !strings.Contains(errOut, "needs --namespace") {
		t.Errorf("install on a shared cluster without namespace: exit %d %s", code, errOut)
	}
	if code, _, errOut := h.run("", "install", "create", "-w", "acme", "--name", "x", "--all-repos", "--cluster", "nope", "--namespace", "a"); code != 1 || !strings.Contains(errOut, `cluster "nope" does not exist`) {
		t.Errorf("install on a missing cluster: exit %d %s", code, errOut)
	}
	if out := h.ok("", "cluster", "node", "list", "prod"); !strings.Contains(out, "ID") {
		t.Errorf("node list:\n%s", out)
	}

	// Installs and tokens.
	out = h.ok("", "install", "create", "-w", "acme", "--name", "web", "--repo", "ghcr.io/acme/*", "--repo", "docker.io/nginx",
		"--cluster", "prod", "--namespace", "shop", "--service-account", "puller")
	if !strings.Contains(out, "ghcr.io/acme/*,docker.io/library/nginx") {
		t.Errorf("install create: %q", out)
	}
	h.ok("", "install", "create", "-w", "acme", "--name", "all", "--all-repos")
	out = h.ok("", "install", "list", "-w", "acme")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "all") ||
		!strings.Contains(lines[2], "shop") || !strings.Contains(lines[2], "puller") {
		t.Errorf("install list:\n%s", out)
	}
	code, out, errOut = h.run("", "install", "token", "acme/web", "--ttl", "1h")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "expires at") {
		t.Fatalf("token: exit %d stdout %q stderr %q", code, out, errOut)
	}
	claims, err := h.keyring.Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	in, _ := h.st.GetInstall(ctx, "acme", "web")
	if claims.Install != in.ID || claims.Generation != 1 || time.Until(claims.ExpiresAt()) < 59*time.Minute {
		t.Errorf("claims %+v", claims)
	}
	var tok api.Token
	if err := json.Unmarshal([]byte(h.ok("", "install", "token", "-w", "acme", "web", "-o", "json")), &tok); err != nil ||
		tok.Install != "web" || tok.Workspace != "acme" || tok.Token == "" {
		t.Errorf("token json: %v %+v", err, tok)
	}
	h.ok("", "install", "update", "-w", "acme", "web", "--repo", "ghcr.io/acme/web")
	h.ok("", "install", "disable", "-w", "acme", "web")
	code, out, errOut = h.run("", "install", "token", "acme/web")
	if code != 1 || out != "" || !strings.Contains(errOut, `409 Conflict: install "web" in workspace "acme" is disabled`) {
		t.Errorf("token of disabled install: exit %d %q %q", code, out, errOut)
	}
	h.ok("", "install", "enable", "-w", "acme", "web")
	_ = json.Unmarshal([]byte(h.ok("", "install", "token", "acme/web", "-o", "json")), &tok)
	if c, err := h.keyring.Verify(tok.Token); err != nil || c.Generation != 3 {
		t.Errorf("token after enable: %v %+v", err, c)
	}
	h.ok("", "install", "delete", "-w", "acme", "all")
	h.ok("", "registry", "delete", "-w", "acme", "hub")
	h.ok("", "workspace", "delete", "beta")

	// Nothing printed anywhere holds a password; nor the hub's log.
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.outputs {
		for _, pw := range []string{pw1, pw2} {
			if strings.Contains(o, pw) {
				t.Errorf("CLI output contains the password: %s", o)
			}
		}
	}
	if l := h.logs.String(); strings.Contains(l, pw1) || strings.Contains(l, pw2) {
		t.Errorf("hub log contains the password")
	}
}

func TestAudit(t *testing.T) {
	h := newHub(t)
	now := time.Now()
	ev := func(install, ref string, age time.Duration) store.AuditEvent {
		return store.AuditEvent{Time: now.Add(-age), Workspace: "acme", Install: install, Cluster: "prod", Node: "n1",
			ClientAddr: "10.0.0.9", Upstream: "ghcr.io", Repository: "acme/app", Reference: ref, Kind: "manifest",
			Method: "GET", Bytes: 1234, Status: 200, Duration: 25 * time.Millisecond}
	}
	if err := h.st.AppendAudit(context.Background(), []store.AuditEvent{
		ev("web", "old", 3*time.Hour), ev("web", "v1", 10*time.Minute), ev("api", "v2", 5*time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	refused := ev("web", "v9", time.Minute)
	refused.Status, refused.Reason, refused.Count = 401, "install_disabled", 7
	if err := h.st.AppendAudit(context.Background(), []store.AuditEvent{refused}); err != nil {
		t.Fatal(err)
	}
	out := h.ok("", "audit", "-w", "acme", "--refused")
	if !strings.Contains(out, "REASON") || !strings.Contains(out, "install_disabled x 7") || !strings.Contains(out, "401 Unauthorized") || strings.Contains(out, "v1") {
		t.Errorf("audit --refused:\n%s", out)
	}
	out = h.ok("", "audit", "-w", "acme")
	if !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "v1") || !strings.Contains(out, "v2") ||
		strings.Contains(out, "old") || !strings.Contains(out, "200 OK") || !strings.Contains(out, "25ms") {
		t.Errorf("audit:\n%s", out)
	}
	out = h.ok("", "audit", "-w", "acme", "--install", "web", "--since", "all")
	if !strings.Contains(out, "old") || !strings.Contains(out, "v1") || strings.Contains(out, "v2") {
		t.Errorf("audit --install web --since all:\n%s", out)
	}
	var evs []api.AuditEvent
	if err := json.Unmarshal([]byte(h.ok("", "audit", "--since", "4h", "-o", "json")), &evs); err != nil || len(evs) != 4 {
		t.Errorf("audit json: %v %d", err, len(evs))
	}
	if out := h.ok("", "audit", "-w", "nobody", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty audit json: %q", out)
	}
	code, _, errOut := h.run("", "audit", "--since", "yesterday")
	if code != 1 || !strings.Contains(errOut, `400 Bad Request: since "yesterday"`) {
		t.Errorf("bad since: %d %s", code, errOut)
	}

	// --follow prints what is there, then new events as they come, and
	// ends cleanly when the context is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &testlog.Buffer{}
	done := make(chan int)
	go func() {
		code, _, _ := h.runCtx(ctx, "", stdout, "audit", "-w", "acme", "--follow", "--poll-interval", "20ms")
		done <- code
	}()
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "v2") })
	if err := h.st.AppendAudit(context.Background(), []store.AuditEvent{ev("web", "v3", 0), ev("api", "v4", 0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "v4") })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("follow exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop")
	}
	got := stdout.String()
	if strings.Count(got, "TIME") != 1 || strings.Count(got, "v1") != 1 || strings.Count(got, "v3") != 1 || strings.Contains(got, "old") {
		t.Errorf("follow output:\n%s", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUsageErrors(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"group without subcommand", []string{"workspace"}, "missing command (one of: create, delete, list)"},
		{"unknown subcommand", []string{"workspace", "bogus"}, `unknown command "bogus" for "pullgate-hub workspace"`},
		{"missing argument", []string{"workspace", "create"}, "wants 1 argument(s) NAME, got 0"},
		{"extra argument", []string{"workspace", "create", "a", "b"}, "got 2"},
		{"extra argument to list", []string{"workspace", "list", "x"}, "takes no arguments"},
		{"unknown flag", []string{"workspace", "list", "--nope"}, "unknown flag: --nope"},
		{"output yaml", []string{"--output", "yaml", "workspace", "list"}, `--output "yaml": want table or json`},
		{"output yaml short", []string{"workspace", "list", "-o", "yaml"}, `--output "yaml"`},
		{"bad hub URL", []string{"--hub", "ftp://x", "workspace", "list"}, `hub URL "ftp://x"`},
		{"bad timeout", []string{"--timeout", "soon", "workspace", "list"}, "invalid argument"},
		{"no password-stdin", []string{"registry", "add", "-w", "acme", "--name", "x", "--host", "ghcr.io", "--username", "u"}, "needs --password-stdin"},
		{"password flag does not exist", []string{"registry", "add", "-w", "acme", "--name", "x", "--host", "ghcr.io", "--password", "hunter2"}, "unknown flag: --password"},
		{"registry add without workspace", []string{"registry", "add", "--name", "x", "--host", "ghcr.io", "--password-stdin"}, "needs --workspace"},
		{"registry add without name and host", []string{"registry", "add", "-w", "acme", "--password-stdin"}, "needs --name and --host"},
		{"registry list without workspace", []string{"registry", "list"}, "needs --workspace"},
		{"registry update nothing", []string{"registry", "update", "-w", "acme", "gh"}, "nothing to update"},
		{"registry test without name", []string{"registry", "test", "-w", "acme"}, "NAME"},
		{"install create without name", []string{"install", "create", "-w", "acme"}, "needs --name"},
		{"install update nothing", []string{"install", "update", "-w", "acme", "web"}, "--repo patterns or --all-repos"},
		{"install token without slash", []string{"install", "token", "acme"}, "WORKSPACE/INSTALL"},
		{"install token empty part", []string{"install", "token", "acme/"}, "WORKSPACE/INSTALL"},
		{"install token bad ttl", []string{"install", "token", "acme/web", "--ttl", "banana"}, "invalid argument"},
		{"install token conflicting workspace", []string{"install", "token", "-w", "beta", "acme/web"}, "differ"},
		{"audit argument", []string{"audit", "acme"}, "takes no arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := h.run("", c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, c.msg) || !strings.Contains(errOut, "--help") {
				t.Errorf("stderr %q: want error: ... %s", errOut, c.msg)
			}
		})
	}
}

func TestAPIErrorsExit1(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	cases := []struct {
		name, stdin string
		args        []string
		msg         string
	}{
		{"empty password", "", []string{"registry", "add", "-w", "acme", "--name", "x", "--host", "ghcr.io", "--username", "u", "--password-stdin"}, "empty password on stdin"},
		{"newline only password", "\n", []string{"registry", "add", "-w", "acme", "--name", "x", "--host", "ghcr.io", "--username", "u", "--password-stdin"}, "empty password on stdin"},
		{"missing workspace", "pw", []string{"registry", "add", "-w", "nope", "--name", "x", "--host", "ghcr.io", "--kind", "token", "--password-stdin"}, `404 Not Found: workspace "nope" not found`},
		{"bad name", "", []string{"workspace", "create", "Bad"}, `400 Bad Request: name "Bad"`},
		{"delete missing", "", []string{"workspace", "delete", "nope"}, `delete workspace "nope": 404 Not Found`},
		{"bad pattern", "", []string{"install", "create", "-w", "acme", "--name", "web", "--repo", "ghcr.io"}, `400 Bad Request: repos[0]`},
		{"token for missing install", "", []string{"install", "token", "acme/web"}, `404 Not Found: install "web" in workspace "acme" not found`},
		{"registry test missing", "", []string{"registry", "test", "-w", "acme", "nope"}, "404 Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := h.run(c.stdin, c.args...)
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, c.msg) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %s", code, out, errOut, c.msg)
			}
		})
	}
	h.ok("", "install", "create", "-w", "acme", "--name", "web", "--all-repos")
	code, _, errOut := h.run("", "install", "token", "acme/web", "--ttl", "48h")
	if code != 1 || !strings.Contains(errOut, `400 Bad Request: ttl "48h0m0s": must be between 1m0s and 24h0m0s`) {
		t.Errorf("ttl 48h: %d %s", code, errOut)
	}
	// Nothing was created by the refused requests.
	if out := h.ok("", "registry", "list", "-w", "acme", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("registries after refused adds: %s", out)
	}
}

func TestAdminTokenSources(t *testing.T) {
	h := newHub(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.token")
	run := func(args ...string) (int, string) {
		root := NewRoot()
		root.SetArgs(append([]string{"--hub", h.url}, args...))
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetIn(strings.NewReader(""))
		return Execute(context.Background(), root), errOut.String()
	}
	t.Setenv(EnvToken, "")
	t.Setenv(EnvHub, "")
	code, errOut := run("--token-file", missing, "workspace", "list")
	if code != 1 || !strings.Contains(errOut, "--token not given") || !strings.Contains(errOut, "$PULLGATE_TOKEN not set") ||
		!strings.Contains(errOut, missing) {
		t.Errorf("no token: %d %s", code, errOut)
	}
	empty := filepath.Join(dir, "empty.token")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if code, errOut := run("--token-file", empty, "workspace", "list"); code != 1 || !strings.Contains(errOut, "is empty") {
		t.Errorf("empty token file: %d %s", code, errOut)
	}
	good := filepath.Join(dir, "admin.token")
	_ = os.WriteFile(good, []byte(admin+"\n"), 0o600)
	if code, errOut := run("--token-file", good, "workspace", "list"); code != 0 {
		t.Errorf("token file: %d %s", code, errOut)
	}
	if code, errOut := run("--token", "wrong", "--token-file", good, "workspace", "list"); code != 1 || !strings.Contains(errOut, "401 Unauthorized") {
		t.Errorf("--token wins over the file: %d %s", code, errOut)
	}
	t.Setenv(EnvToken, admin)
	if code, errOut := run("--token-file", missing, "workspace", "list"); code != 0 {
		t.Errorf("env token: %d %s", code, errOut)
	}
	// $PULLGATE_HUB is used when --hub is not given.
	root := NewRoot()
	root.SetArgs([]string{"workspace", "list"})
	var errBuf bytes.Buffer
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&errBuf)
	t.Setenv(EnvHub, h.url)
	if code := Execute(context.Background(), root); code != 0 {
		t.Errorf("env hub: %d %s", code, errBuf.String())
	}
}

func TestUnreachableHub(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	root := NewRoot()
	root.SetArgs([]string{"--hub", url, "--token", "x", "--timeout", "2s", "workspace", "list"})
	var errOut bytes.Buffer
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&errOut)
	if code := Execute(context.Background(), root); code != 1 || !strings.Contains(errOut.String(), "list workspaces: hub "+url) {
		t.Errorf("unreachable: %d %s", code, errOut.String())
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"workspace", "--help"}, {"registry", "add", "--help"}, {"registry", "test", "--help"},
		{"install", "token", "--help"}, {"audit", "--help"}, {"help", "install"},
	} {
		root := NewRoot()
		root.SetArgs(args)
		var out, errOut bytes.Buffer
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
	root.SetArgs([]string{"--version"})
	var out bytes.Buffer
	root.SetOut(&out)
	if code := Execute(context.Background(), root); code != 0 || !strings.HasPrefix(out.String(), "pullgate-hub dev (") {
		t.Errorf("--version: exit %d %q", code, out.String())
	}
	root = NewRoot()
	root.SetArgs([]string{"registry", "add", "--help"})
	out.Reset()
	root.SetOut(&out)
	Execute(context.Background(), root)
	if strings.Contains(out.String(), "--password ") || !strings.Contains(out.String(), "--password-stdin") {
		t.Errorf("registry add help:\n%s", out.String())
	}
}
