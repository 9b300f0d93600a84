package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/internal/testlog"
)

// readSpy is stdin that records whether anything read from it.
type readSpy struct {
	r    *strings.Reader
	read atomic.Bool
}

func (s *readSpy) Read(p []byte) (int, error) {
	s.read.Store(true)
	return s.r.Read(p)
}

// A mistake in any flag of registry add or update is a usage error found
// before the password is read from stdin, and nothing is created.
func TestRegistryFlagsCheckedBeforePassword(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	h.ok("pw", "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io", "--username", "u", "--password-stdin")
	add := []string{"registry", "add", "-w", "acme", "--password-stdin"}
	upd := []string{"registry", "update", "-w", "acme", "gh", "--password-stdin"}
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"bad name", append(add, "--name", "Bad_Name", "--host", "ghcr.io", "--kind", "token"), `name "Bad_Name"`},
		{"bad host", append(add, "--name", "x", "--host", "http://x/../y", "--username", "u"), "host:"},
		{"host with user info", append(add, "--name", "x", "--host", "u:hunter2@ghcr.io", "--username", "u"), "must not contain user info"},
		{"bad kind", append(add, "--name", "x", "--host", "ghcr.io", "--kind", "nope"), `kind "nope": want one of`},
		{"kind for another host", append(add, "--name", "x", "--host", "ghcr.io", "--kind", "ecr"), `kind ecr: host "ghcr.io" is not an Amazon ECR registry`},
		{"basic without username", append(add, "--name", "x", "--host", "registry.example.com"), "kind basic needs a username"},
		{"bad endpoint", append(add, "--name", "x", "--host", "ghcr.io", "--kind", "token", "--endpoint", "ftp://10.0.0.5"), "endpoint"},
		{"bad realm host", append(add, "--name", "x", "--host", "ghcr.io", "--kind", "token", "--realm-host", "https://auth/x"), "realm"},
		{"ecr flags on basic", append(add, "--name", "x", "--host", "ghcr.io", "--username", "u", "--aws-region", "us-east-1"), "ecr parameters"},
		{"bad aws key id", append(add, "--name", "x", "--host", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "--aws-access-key-id", "nope"), "access key id"},
		{"bad token expiry", append(add, "--name", "x", "--host", "ghcr.io", "--token-expires-at", "tomorrow"), "--token-expires-at"},
		{"update bad kind", append(upd, "--kind", "nope"), `kind "nope"`},
		{"update bad endpoint", append(upd, "--endpoint", "ftp://x"), "endpoint"},
		{"update kind without password", []string{"registry", "update", "-w", "acme", "gh", "--kind", "token"}, "--password-stdin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spy := &readSpy{r: strings.NewReader("hunter2-secret")}
			root := NewRoot()
			root.SetArgs(append([]string{"--hub", h.url, "--token", admin}, c.args...))
			root.SetIn(spy)
			var out, errOut testlog.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			code := Execute(context.Background(), root)
			if code != ExitUsage || !strings.Contains(errOut.String(), c.msg) || spy.read.Load() {
				t.Errorf("exit %d (want %d), stdin read %v, stderr %q; want it to name %q", code, ExitUsage, spy.read.Load(), errOut.String(), c.msg)
			}
			if strings.Contains(out.String()+errOut.String(), "hunter2") {
				t.Errorf("output leaks the password or user info")
			}
		})
	}
	var regs []api.Registry
	if err := json.Unmarshal([]byte(h.ok("", "registry", "list", "-w", "acme", "-o", "json")), &regs); err != nil || len(regs) != 1 || regs[0].Kind != "basic" || regs[0].Version != 1 {
		t.Errorf("registries after refused commands: %v %+v", err, regs)
	}
}

// registry update --kind changes the kind with a new secret, and the hub
// refuses a new kind without one.
func TestRegistryUpdateKind(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	h.ok("pw", "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io", "--username", "bot", "--password-stdin")
	var r api.Registry
	if err := json.Unmarshal([]byte(h.ok("ghp_token", "registry", "update", "-w", "acme", "gh", "--kind", "token", "--password-stdin", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "token" || r.Username != "bot" || r.Version != 2 {
		t.Errorf("after --kind token: %+v", r)
	}
	// To a kind whose username means something else: not carried over.
	if err := json.Unmarshal([]byte(h.ok("ya29.tok", "registry", "update", "-w", "acme", "gh", "--kind", "basic", "--username", "other", "--password-stdin", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "basic" || r.Username != "other" || r.Version != 3 {
		t.Errorf("after --kind basic: %+v", r)
	}
	// A kind the host cannot have: refused by the hub, nothing changed.
	code, _, errOut := h.run("AKIAxxx", "registry", "update", "-w", "acme", "gh", "--kind", "ecr", "--password-stdin")
	if code != ExitError || !strings.Contains(errOut, "not an Amazon ECR registry") {
		t.Errorf("--kind ecr on ghcr.io: exit %d %s", code, errOut)
	}
	// The API refuses a new kind without a password.
	c, err := NewClient(h.url, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := "token"
	if _, err := c.UpdateRegistry(context.Background(), "acme", "gh", api.UpdateRegistryRequest{Kind: &k}); err == nil || !strings.Contains(err.Error(), "give the password too") {
		t.Errorf("API kind change without password: %v", err)
	}
	if err := json.Unmarshal([]byte(h.ok("", "registry", "get", "-w", "acme", "gh", "-o", "json")), &r); err != nil || r.Kind != "basic" || r.Version != 3 {
		t.Errorf("after refused changes: %v %+v", err, r)
	}
}
