package e2eproc

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testlog"
)

// Proc is a child process of a test, in its own process group.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  *testlog.Buffer // stdout and stderr together
	// Exited receives the exit status once (whoever reads it first);
	// Done is closed on exit, for any number of waiters.
	Exited chan error
	Done   chan struct{}
}

// Start runs bin with args in dir (env added to the test's), killed with
// its group when the test ends; its log tail is printed if the test failed.
func Start(t testing.TB, name, dir string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Log: &testlog.Buffer{}, Exited: make(chan error, 1), Done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Dir = dir
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.Cmd.Wait()
		p.Exited <- err
		close(p.Done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, Tail(p.Log.String(), 40))
		}
	})
	return p
}

// signal sends sig to the process group.
func (p *Proc) signal(sig syscall.Signal) error {
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.Done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.signal(syscall.SIGCONT) // a paused process cannot exit
	p.signal(syscall.SIGTERM)
	select {
	case <-p.Done:
		select {
		case err := <-p.Exited:
			if err != nil {
				t.Fatalf("%s exit after SIGTERM: %v\n%s", p.Name, err, Tail(p.Log.String(), 40))
			}
		default: // someone else read the status
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM", p.Name)
	}
}

// Kill sends SIGKILL to the group and waits for the exit.
func (p *Proc) Kill() {
	if !p.Alive() {
		return
	}
	p.signal(syscall.SIGKILL)
	p.Cmd.Process.Kill()
	<-p.Done
}

// Pause stops the group with SIGSTOP: its sockets stay open, nothing is
// answered (a hung process, as the network sees it).
func (p *Proc) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume continues a paused group.
func (p *Proc) Resume() error { return p.signal(syscall.SIGCONT) }

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitHTTP polls url until it answers 200, for up to 30 s, failing early
// when p exits.
func WaitHTTP(t testing.TB, url string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done:
			t.Fatalf("%s exited\n%s", p.Name, Tail(p.Log.String(), 40))
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
