//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/internal/testupstream"

	"github.com/pullgate/pullgate/internal/testlog"
)

// binary is bin/<name> as `make build` leaves it, built here when missing
// so a test also runs on its own.
func binary(t *testing.T, name, pkg string) string { return e2eproc.Binary(t, name, pkg) }

func hubBinary(t *testing.T) string { return e2eproc.HubBinary(t) }

// proc is a child process of a test (e2eproc.Proc, under the names this
// suite's tests use).
type proc struct {
	*e2eproc.Proc
	name   string
	cmd    *exec.Cmd
	log    *testlog.Buffer
	exited chan error
}

func startProc(t *testing.T, name, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	return wrapProc(e2eproc.Start(t, name, dir, env, bin, args...))
}

// wrapProc gives p the names this suite's tests use.
func wrapProc(p *e2eproc.Proc) *proc {
	return &proc{Proc: p, name: p.Name, cmd: p.Cmd, log: p.Log, exited: p.Exited}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) { p.Stop(t) }

func (p *proc) kill() { p.Kill() }

func tail(s string, n int) string { return e2eproc.Tail(s, n) }

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, p *proc) { e2eproc.WaitHTTP(t, url, p.Proc) }

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
	h.cli = newCLI(t, bin, dir, []string{"PULLGATE_HUB=http://" + h.addr})
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

func natsServerBinary(t *testing.T) string { return e2eproc.NATSServerBinary(t) }

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

// cli is the hub's CLI (e2eproc.CLI, under the names this suite's tests
// use).
type cli struct {
	t    *testing.T
	c    *e2eproc.CLI
	seen *testlog.Buffer // every byte any command printed
}

func newCLI(t *testing.T, bin, dir string, env []string) *cli {
	c := &e2eproc.CLI{T: t, Bin: bin, Dir: dir, Env: env}
	return &cli{t: t, c: c, seen: &c.Seen}
}

func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	return c.c.Must(stdin, args...)
}
