//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// hubBinary is bin/pullgate-hub as `make build` leaves it, built here when
// missing so the test also runs on its own.
func hubBinary(t *testing.T) string {
	root := testupstream.RepoRoot(t)
	bin := filepath.Join(root, "bin", "pullgate-hub")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	bin = filepath.Join(t.TempDir(), "pullgate-hub")
	cmd := exec.Command("go", "build", "-o", bin, "./hub/cmd/pullgate-hub")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pullgate-hub: %v\n%s", err, out)
	}
	return bin
}

type cli struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string
	seen bytes.Buffer // every byte any command printed
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
		return stdout.String(), fmt.Errorf("pullgate-hub %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
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

// TestQuickStart follows the README: start the hub with embedded defaults,
// add a credential, create an install, pull with skopeo through the hub,
// revoke, read the audit trail.
func TestQuickStart(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not found: apt-get install skopeo")
	}
	up := testupstream.StartDistribution(t)
	want := up.PushRandomImage(t, "org/app", "v1", 2, 1<<20)
	wantDigest, _ := want.Digest()

	bin := hubBinary(t)
	work := t.TempDir()
	port, natsPort := testupstream.FreePort(t), testupstream.FreePort(t)
	hubAddr := fmt.Sprintf("127.0.0.1:%d", port)
	var hubLog bytes.Buffer
	serve := exec.Command(bin, "serve", "--listen", hubAddr, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort))
	serve.Dir = work // default data dir ./pullgate-data, as in the README
	serve.Stdout, serve.Stderr = &hubLog, &hubLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() { serve.Process.Kill() })
	waitReady(t, "http://"+hubAddr+"/readyz", exited, &hubLog)

	c := &cli{t: t, bin: bin, dir: work, env: []string{"PULLGATE_HUB=http://" + hubAddr}}
	c.must("", "workspace", "create", "acme")
	c.must(up.Password+"\n", "registry", "add", "--workspace", "acme", "--name", "corp", "--host", "registry.corp",
		"--endpoint", up.URL, "--username", up.User, "--password-stdin")
	if out := c.must("", "registry", "test", "--workspace", "acme", "corp", "--repo", "org/app"); !strings.Contains(strings.ToLower(out), "pull") {
		t.Fatalf("registry test output: %s", out)
	}
	c.must("", "install", "create", "--workspace", "acme", "--name", "web", "--repo", "registry.corp/org/*")
	token := strings.TrimSpace(c.must("", "install", "token", "acme/web", "--ttl", "15m"))
	if strings.Count(token, ".") != 2 {
		t.Fatalf("install token %q", token)
	}

	ref := fmt.Sprintf("docker://%s/registry.corp/org/app:v1", hubAddr)
	dest := filepath.Join(work, "pulled")
	out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "--src-creds", "pullgate:"+token, ref, "dir:"+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy through the hub: %v\n%s", err, out)
	}
	out, err = exec.Command(skopeo, "inspect", "--tls-verify=false", "--creds", "pullgate:"+token, "--format", "{{.Digest}}", ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != wantDigest.String() {
		t.Fatalf("skopeo inspect: %v %s, want %s", err, out, wantDigest)
	}

	// Revoke: the very next pull is refused.
	c.must("", "install", "disable", "--workspace", "acme", "web")
	out, err = exec.Command(skopeo, "inspect", "--tls-verify=false", "--creds", "pullgate:"+token, ref).CombinedOutput()
	if err == nil {
		t.Fatal("pull after install disable succeeded")
	}
	if !strings.Contains(strings.ToLower(string(out)), "unauthorized") && !strings.Contains(strings.ToLower(string(out)), "authentication required") {
		t.Fatalf("pull after disable: want an authorization error, got %s", out)
	}

	// The audit trail lists the pulls with bytes.
	var events []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		raw := c.must("", "audit", "--workspace", "acme", "--output", "json")
		events = decodeEvents(t, raw)
		if blobBytes(events) > 1<<20 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if blobBytes(events) < 2<<20 {
		t.Fatalf("audit trail holds %d blob bytes, want >= 2 MiB: %v", blobBytes(events), events)
	}

	// Graceful stop on SIGTERM.
	serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("hub exit after SIGTERM: %v\n%s", err, hubLog.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not stop within 30s of SIGTERM")
	}

	// The upstream password never appears in CLI output or hub logs.
	if bytes.Contains(c.seen.Bytes(), []byte(up.Password)) || bytes.Contains(hubLog.Bytes(), []byte(up.Password)) {
		t.Fatal("upstream password printed")
	}
}

func decodeEvents(t *testing.T, raw string) []map[string]any {
	var events []map[string]any
	if err := json.Unmarshal([]byte(raw), &events); err == nil {
		return events
	}
	var wrapped map[string][]map[string]any
	if err := json.Unmarshal([]byte(raw), &wrapped); err != nil {
		t.Fatalf("audit json: %v\n%s", err, raw)
	}
	for _, v := range wrapped {
		return v
	}
	return nil
}

func blobBytes(events []map[string]any) int64 {
	var n int64
	for _, e := range events {
		if e["kind"] == "blob" {
			if b, ok := e["bytes"].(float64); ok {
				n += int64(b)
			}
		}
	}
	return n
}

func waitReady(t *testing.T, url string, exited chan error, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("hub exited: %v\n%s", err, log.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("hub not ready at %s after 30s\n%s", url, log.String())
}
