package version_test

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testbuild"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// `make build` stamps every binary with VERSION and REVISION (the stamp the
// packages and images get from the same LDFLAGS), and builds them static,
// the hub included, as the packages ship them.
func TestMakeBuildStampsEveryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the commands")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	const ver, rev = "9.8.7-stamp", "feedc0de"
	cmd := exec.Command("make", "build", "BIN="+bin, "VERSION="+ver, "REVISION="+rev)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, c := range [][]string{
		{"pullgate-hub", "--version"},
		{"pullgate-agent", "--version"},
		{"pullgate-credential-provider", "--version"},
		{"docker-credential-pullgate", "version"},
		{"docker-credential-pullgate", "--version"},
	} {
		out, err := exec.Command(filepath.Join(bin, c[0]), c[1:]...).CombinedOutput()
		want := c[0] + " " + ver + " (" + rev + ", "
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("%v: %v, output %q; want it to start with %q", c, err, out, want)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	for _, b := range []string{"pullgate-hub", "pullgate-agent", "pullgate-credential-provider"} {
		f, err := elf.Open(filepath.Join(bin, b))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter)", b)
			}
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(bin, "docker-credential-pullgate")); err != nil {
		t.Error(err)
	}
	enrolStamped(t, bin, ver)
}

// enrolStamped runs the built hub and enrols the built agent with it: the
// hub logs the version the agent reports.
func enrolStamped(t *testing.T, bin, ver string) {
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	hubLog := &testlog.Buffer{}
	hub := exec.Command(filepath.Join(bin, "pullgate-hub"), "serve", "--data", filepath.Join(dir, "data"),
		"--listen", httpAddr, "--nats-listen", natsAddr, "--metrics-listen", "")
	hub.Stdout, hub.Stderr = hubLog, hubLog
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hub.Process.Kill(); _ = hub.Wait() }()
	waitFor(t, hubLog, "hub serving")
	if !strings.Contains(hubLog.String(), "version="+ver) {
		t.Errorf("hub start-up log without its version:\n%s", hubLog)
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(bin, "pullgate-hub"), append([]string{"--hub", "http://" + httpAddr,
			"--token-file", filepath.Join(dir, "data", "admin.token")}, args...)...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return string(out)
	}
	cli("workspace", "create", "acme")
	join := filepath.Join(dir, "join-token")
	if err := os.WriteFile(join, []byte(cli("cluster", "create", "edge", "--workspace", "acme")), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog := &testlog.Buffer{}
	agent := exec.Command(filepath.Join(bin, "pullgate-agent"), "run", "--nats-url", "nats://"+natsAddr,
		"--join-token-file", join, "--state-dir", filepath.Join(dir, "state"), "--socket", filepath.Join(dir, "agent.sock"),
		"--metrics-listen", "", "--node-name", "worker-1")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = agent.Process.Kill(); _ = agent.Wait() }()
	waitFor(t, hubLog, "node enrolled")
	if !strings.Contains(hubLog.String(), "agent_version="+ver) {
		t.Errorf("the hub did not log the agent's version %s at enrolment:\n%s\nagent:\n%s", ver, hubLog, agentLog)
	}
}

func waitFor(t *testing.T, log *testlog.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 30s:\n%s", s, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
