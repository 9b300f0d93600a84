//go:build e2e

package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// TestContainerdTokenNeverUpstream: the kubelet flow (helper exec, CRI
// PullImage with the auth it returned) against a real containerd, for a
// host the agent mirrors to the hub and for two hosts the hub has
// credentials for but this node does not route to the hub (an operator's
// own hosts.toml naming the upstream; no hosts.toml at all). Every
// upstream records each Authorization header it receives: the only
// credential any of them may see is its own, sent by the hub. An install
// token offered for an unrouted host would arrive there as Basic
// pullgate:<token>.
func TestContainerdTokenNeverUpstream(t *testing.T) {
	type upstream struct {
		name, host string
		reg        *testupstream.Registry
		digest     string
	}
	start := func(name, user, pass string) *upstream {
		r := testupstream.StartInProcess(t, testupstream.WithBasicAuth(user, pass))
		img := r.PushRandomImage(t, "org/app", "v1", 1, 64<<10)
		r.ResetLog()
		return &upstream{name: name, host: name, reg: r, digest: digestOf(t, img)}
	}
	mirrored := start("registry-m.corp", "m-user", "m-SECRET-pass")
	operator := start("registry-o.corp", "o-user", "o-SECRET-pass")
	direct := start("", "d-user", "d-SECRET-pass")
	direct.host = direct.reg.Host // 127.0.0.1:PORT: containerd reaches it without any hosts.toml
	ups := []*upstream{mirrored, operator, direct}

	ctr := startContainerd(t, "containerd")
	// The operator routes registry-o.corp to the upstream itself.
	own := filepath.Join(ctr.certs, operator.host, "hosts.toml")
	os.MkdirAll(filepath.Dir(own), 0o755)
	os.WriteFile(own, []byte(fmt.Sprintf("server = %q\n", operator.reg.URL)), 0o644)

	h := startHub(t, t.TempDir(), "")
	c := h.cli
	c.must("", "workspace", "create", "acme")
	join := strings.TrimSpace(c.must("", "cluster", "create", "edge", "--workspace", "acme"))
	for i, u := range ups {
		c.must(u.reg.Password+"\n", "registry", "add", "-w", "acme", "--name", fmt.Sprintf("r%d", i), "--host", u.host,
			"--endpoint", u.reg.URL, "--allow-private-network", "--username", u.reg.User, "--password-stdin")
		c.must("", "install", "create", "-w", "acme", "--name", fmt.Sprintf("app%d", i), "--cluster", "edge",
			"--repo", u.host+"/org/*")
	}
	// The agent mirrors all hosts it is told about except the direct one
	// (--mirror-host narrows), and leaves the operator's file alone.
	a := startAgent(t, h.nats, join, "--containerd-config-path", ctr.certs, "--hub-url", "http://"+h.addr,
		"--mirror-host", mirrored.host+","+operator.host)
	k := newKubelet(t, a, "--match-image", mirrored.host, "--match-image", operator.host,
		"--match-image", direct.host, "--match-image", h.addr)
	waitFor(t, 10*time.Second, "mirror of "+mirrored.host, func() bool {
		return fileHas(filepath.Join(ctr.certs, mirrored.host, "hosts.toml"), "# managed by pullgate-agent")
	})

	// The mirrored host: pulled through the hub.
	img := mirrored.host + "/org/app:v1"
	auth := k.criAuth(img, "")
	if auth == nil {
		t.Fatalf("no credentials for %s, which the agent mirrors", img)
	}
	ctr.mustPull(t, img, auth)
	ctr.hasImage(t, img, mirrored.digest)

	// Not routed to the hub: the helper returns nothing, containerd pulls
	// anonymously and the upstream refuses.
	for _, u := range []*upstream{operator, direct} {
		img := u.host + "/org/app:v1"
		auth := k.criAuth(img, "")
		if auth != nil {
			t.Errorf("the helper returned credentials for %s, which this node does not route to the hub", img)
		}
		if _, _, err := ctr.pull(img, auth); err == nil {
			t.Errorf("anonymous pull of %s succeeded: the upstream should require its credential", img)
		}
		if len(u.reg.Log()) == 0 {
			t.Errorf("%s saw no request: containerd did not reach it, so the test proves nothing", u.reg.URL)
		}
	}

	// The same image in path-prefix form still goes through the hub.
	prefix := h.addr + "/" + operator.host + "/org/app:v1"
	pauth := k.criAuth(prefix, "")
	if pauth == nil {
		t.Fatalf("no credentials for %s", prefix)
	}
	ctr.mustPull(t, prefix, pauth)
	ctr.hasImage(t, prefix, operator.digest)

	for _, u := range ups {
		own := "Basic " + base64.StdEncoding.EncodeToString([]byte(u.reg.User+":"+u.reg.Password))
		for _, r := range u.reg.Log() {
			if r.AuthHeader == "" || r.AuthHeader == own {
				continue
			}
			what := r.AuthScheme
			if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.AuthHeader, "Basic ")); err == nil {
				if user, _, ok := strings.Cut(string(b), ":"); ok {
					what += " user " + user
				}
			}
			t.Errorf("upstream %s received a credential that is not its own (%s) on %s %s: an install token left the hub path",
				u.host, what, r.Method, r.Path)
		}
	}
	if mirrored.reg.Log() == nil {
		t.Fatal("the hub never reached the mirrored upstream")
	}
}
