//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	kubeletconfig "k8s.io/kubelet/config/v1"
)

// TestREADMENodeSection follows the README's node section with the built
// binaries, on loopback (nats:// instead of tls://HUB:4222): the join token
// from `cluster create` into a 0600 file, the agent on it, the helper smoke
// test with a CredentialProviderRequest on stdin, and kubelet-config with
// the agent's --socket. The quick start's install exists unbound and
// disabled; the node section binds it with `install update --cluster` and
// enables it, as the README says.
func TestREADMENodeSection(t *testing.T) {
	work := t.TempDir()
	h := startHub(t, work, "")
	c := h.cli
	c.must("", "workspace", "create", "acme")
	c.must("x", "registry", "add", "--workspace", "acme", "--name", "github", "--host", "ghcr.io/acme", "--kind", "token", "--password-stdin")
	c.must("", "install", "create", "--workspace", "acme", "--name", "web", "--repo", "ghcr.io/acme/*")
	c.must("", "install", "disable", "--workspace", "acme", "web")

	// pg cluster create edge --workspace acme > edge.join-token
	tokenOut := filepath.Join(work, "edge.join-token")
	if err := os.WriteFile(tokenOut, []byte(c.must("", "cluster", "create", "edge", "--workspace", "acme")), 0o644); err != nil {
		t.Fatal(err)
	}
	// pg install update --workspace acme web --cluster edge
	// pg install enable --workspace acme web
	c.must("", "install", "update", "--workspace", "acme", "web", "--cluster", "edge")
	c.must("", "install", "enable", "--workspace", "acme", "web")

	// install -D -m 0600 edge.join-token /etc/pullgate/join-token
	node := t.TempDir()
	join := filepath.Join(node, "etc", "pullgate", "join-token")
	if out, err := exec.Command("install", "-D", "-m", "0600", tokenOut, join).CombinedOutput(); err != nil {
		t.Fatalf("install: %v %s", err, out)
	}
	socket := filepath.Join(node, "run", "pullgate", "agent.sock")
	agentBin := binary(t, "pullgate-agent", "./agent/cmd/pullgate-agent")
	a := startProc(t, "agent", node, nil, agentBin, "run", "--nats-url", h.nats, "--join-token-file", join,
		"--state-dir", filepath.Join(node, "state"), "--socket", socket, "--metrics-listen", "")

	// The smoke test, as the README writes it (HUB is the hub's address).
	helper := binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider")
	req := fmt.Sprintf(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"%s/ghcr.io/acme/app:latest"}`, h.addr)
	var resp struct {
		Kind string
		Auth map[string]struct{ Username, Password string }
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("sh", "-c", "echo '"+req+"' | "+helper+" --socket "+socket).Output()
		if err == nil && json.Unmarshal(out, &resp) == nil && len(resp.Auth) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper smoke test: %v %s\nagent:\n%s", err, out, tail(a.log.String(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := resp.Auth[h.addr]; resp.Kind != "CredentialProviderResponse" || got.Username != "pullgate" || strings.Count(got.Password, ".") != 2 {
		t.Errorf("smoke test response: %+v", resp)
	}

	// kubelet-config names the agent's socket for the helper.
	out, err := exec.Command(agentBin, "kubelet-config", "--match-image", "ghcr.io", "--match-image", h.addr, "--socket", socket).Output()
	if err != nil {
		t.Fatal(err)
	}
	var cfg kubeletconfig.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(out, &cfg); err != nil || len(cfg.Providers) != 1 || !strings.Contains(strings.Join(cfg.Providers[0].Args, " "), socket) {
		t.Errorf("kubelet-config: %v\n%s", err, out)
	}
}
