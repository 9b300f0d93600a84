//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

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

	work := t.TempDir()
	h := startHub(t, work, "") // default data dir ./pullgate-data, as in the README
	hubAddr := h.addr
	c := h.cli
	c.must("", "workspace", "create", "acme")
	c.must(up.Password+"\n", "registry", "add", "--workspace", "acme", "--name", "corp", "--host", "registry.corp",
		"--endpoint", up.URL, "--allow-private-network", "--username", up.User, "--password-stdin")
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
	h.stop(t)

	// The upstream password never appears in CLI output or hub logs.
	if strings.Contains(c.seen.String(), up.Password) || strings.Contains(h.log.String(), up.Password) {
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
