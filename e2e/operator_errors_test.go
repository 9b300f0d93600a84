//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// The NATS mistakes a new operator makes, with the built binaries: a second
// hub on a NATS port in use stops at once saying so, and an agent pointed
// at the hub's HTTP port says it is not a NATS server.
func TestNATSOperatorErrors(t *testing.T) {
	work := t.TempDir()
	h := startHub(t, work, "")
	natsAddr := strings.TrimPrefix(h.nats, "nats://")

	other := t.TempDir()
	start := time.Now()
	second := startProc(t, "second hub", other, nil, hubBinary(t), "serve", "--data", filepath.Join(other, "data"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)), "--nats-listen", natsAddr, "--metrics-listen", "")
	select {
	case err := <-second.exited:
		out := second.log.String()
		if err == nil || !strings.Contains(out, "listen on "+natsAddr) || !strings.Contains(out, "in use") || !strings.Contains(out, "--nats-listen") {
			t.Errorf("second hub: %v\n%s", err, out)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("second hub took %v to fail", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a second hub on the same NATS port is still running")
	}

	h.cli.must("", "workspace", "create", "acme")
	join := filepath.Join(work, "join-token")
	if err := os.WriteFile(join, []byte(h.cli.must("", "cluster", "create", "edge", "--workspace", "acme")), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := startProc(t, "agent", dir, nil, binary(t, "pullgate-agent", "./agent/cmd/pullgate-agent"), "run",
		"--nats-url", "nats://"+h.addr, "--join-token-file", join, "--state-dir", filepath.Join(dir, "state"),
		"--socket", filepath.Join(dir, "agent.sock"), "--metrics-listen", "")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.log.String(), "is not a NATS server") {
		if time.Now().After(deadline) {
			t.Fatalf("agent at the hub's HTTP port:\n%s", tail(a.log.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(a.log.String(), "speaks HTTP") {
		t.Errorf("agent log:\n%s", tail(a.log.String(), 20))
	}
}
