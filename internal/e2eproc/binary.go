package e2eproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// Binary is bin/<name> as `make build` leaves it, built into a temporary
// directory when missing so that a test also runs on its own.
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	root := testupstream.RepoRoot(t)
	bin := filepath.Join(root, "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	bin = filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// HubBinary is pullgate-hub.
func HubBinary(t testing.TB) string { return Binary(t, "pullgate-hub", "./hub/cmd/pullgate-hub") }

// AgentBinary is pullgate-agent.
func AgentBinary(t testing.TB) string {
	return Binary(t, "pullgate-agent", "./agent/cmd/pullgate-agent")
}

// HelperBinary is pullgate-credential-provider (also
// docker-credential-pullgate by its name).
func HelperBinary(t testing.TB) string {
	return Binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider")
}

// NATSServerBinary is nats-server from PATH or .cache/bin (make tools
// builds it).
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	p := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin", "nats-server")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("no nats-server binary: run make tools (it builds one into .cache/bin)")
	}
	return p
}
