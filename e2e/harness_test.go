//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/hubproc"
	"github.com/pullgate/pullgate/internal/testupstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

// binary is bin/<name> as `make build` leaves it, built here when missing
// so a test also runs on its own (shared with e2e/console).
func binary(t *testing.T, name, pkg string) string { return hubproc.Binary(t, name, pkg) }

func hubBinary(t *testing.T) string { return binary(t, "pullgate-hub", "./hub/cmd/pullgate-hub") }

// proc is a child process of a test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    *testlog.Buffer
	exited chan error
}

func startProc(t *testing.T, name, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &testlog.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.log.String(), 40))
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("%s exit after SIGTERM: %v\n%s", p.name, err, tail(p.log.String(), 40))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited: %v\n%s", p.name, err, tail(p.log.String(), 40))
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
	t.Fatalf("%s not ready at %s after 30s\n%s", p.name, url, tail(p.log.String(), 40))
}

// hub is a running pullgate-hub with its CLI.
type hub struct {
	*proc
	addr string // host:port of the HTTP listener
	nats string // client URL of its NATS (embedded or external)
	dir  string // working dir; data in dir/pullgate-data
	cli  *cli
}

// startHub runs `pullgate-hub serve` with embedded NATS, or on the external
// NATS server natsURL when it is not empty.
func startHub(t *testing.T, dir, natsURL string) *hub {
	t.Helper()
	h := &hub{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))}
	// Its own metrics port: hubs of parallel tests must not share the
	// default one.
	args := []string{"serve", "--listen", h.addr, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))}
	if natsURL == "" {
		port := testupstream.FreePort(t)
		h.nats = fmt.Sprintf("nats://127.0.0.1:%d", port)
		args = append(args, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", port))
	} else {
		h.nats = natsURL
		args = append(args, "--nats-url", natsURL)
	}
	bin := hubBinary(t)
	h.proc = startProc(t, "hub", dir, nil, bin, args...)
	waitHTTP(t, "http://"+h.addr+"/readyz", h.proc)
	h.cli = &cli{t: t, bin: bin, dir: dir, env: []string{"PULLGATE_HUB=http://" + h.addr}}
	return h
}

// natsServer is an external nats-server process configured with the hub's
// auth callout block.
type natsServer struct {
	t    *testing.T
	bin  string
	conf string
	port int
	dir  string
	*proc
}

func natsServerBinary(t *testing.T) string {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	p := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin", "nats-server")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("no nats-server binary: run make tools (it builds one into .cache/bin)")
	}
	return p
}

// startNATSServer writes a config with the hub's block (from
// `pullgate-hub nats-config --data dataDir`) and starts nats-server.
func startNATSServer(t *testing.T, hubDir string) *natsServer {
	t.Helper()
	block, err := exec.Command(hubBinary(t), "nats-config", "--data", filepath.Join(hubDir, "pullgate-data")).Output()
	if err != nil {
		t.Fatalf("nats-config: %v", err)
	}
	n := &natsServer{t: t, bin: natsServerBinary(t), port: testupstream.FreePort(t), dir: t.TempDir()}
	n.conf = filepath.Join(n.dir, "nats.conf")
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\n", n.port) + string(block)
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	n.proc = startProc(n.t, "nats-server", n.dir, nil, n.bin, "-c", n.conf)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(n.log.String(), "Server is ready") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("nats-server not ready:\n%s", n.log.String())
}

type cli struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string
	seen testlog.Buffer // every byte any command printed
}

func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	c.seen.Write(stdout.Bytes())
	c.seen.Write(stderr.Bytes())
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(c.bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}
