// Package hubproc runs the project's binaries as child processes of a
// test: built when bin/ lacks them, killed with the test, their output
// kept for the failure message. It is shared by the end-to-end suites
// that live in packages of their own (build-tagged test files cannot be
// imported across packages).
package hubproc

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// Binary is bin/<name> as `make build` leaves it, built from pkg into a
// temporary directory when missing, so that a test also runs on its own.
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

// Proc is a child process of a test.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Log    *testlog.Buffer
	Exited chan error
}

// Start runs bin with args in dir (env added to the test's), killed when
// the test ends; its output is logged when the test failed.
func Start(t testing.TB, name, dir string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Log: &testlog.Buffer{}, Exited: make(chan error, 1)}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Dir = dir
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Exited <- p.Cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, Tail(p.Log.String(), 40))
		}
	})
	return p
}

// WaitHTTP polls url until it answers 200, for at most 30 seconds.
func (p *Proc) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.Exited:
			t.Fatalf("%s exited: %v\n%s", p.Name, err, Tail(p.Log.String(), 40))
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s after 30s\n%s", p.Name, url, Tail(p.Log.String(), 40))
}

// Hub is a running `pullgate-hub serve` with an embedded NATS server.
type Hub struct {
	*Proc
	Addr string // host:port of the HTTP listener
	NATS string // NATS client URL
	Data string // data directory
}

// StartHub runs the hub binary with its data in dir/pullgate-data and
// waits until it is ready.
func StartHub(t testing.TB, dir string) *Hub {
	t.Helper()
	natsPort := testupstream.FreePort(t)
	h := &Hub{Addr: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)), NATS: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		Data: filepath.Join(dir, "pullgate-data")}
	bin := Binary(t, "pullgate-hub", "./hub/cmd/pullgate-hub")
	h.Proc = Start(t, "hub", dir, nil, bin, "serve", "--listen", h.Addr,
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort))
	h.WaitHTTP(t, "http://"+h.Addr+"/readyz")
	return h
}

// AdminToken reads the hub's admin token from its data directory.
func (h *Hub) AdminToken(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
