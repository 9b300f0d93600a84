package server

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// An audit query right after a pull shows the pull: the API writes the
// queued events before it queries (they are otherwise batched for up to
// 100ms).
func TestAuditRightAfterPull(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "pw-audit-flush"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	h, err := startHub(t, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.api(t, "POST", "/api/v1/workspaces", map[string]any{"name": "acme"})
	if code, out := h.api(t, "POST", "/api/v1/workspaces/acme/registries", map[string]any{
		"name": "reg", "host": "registry.test", "endpoint": up.URL, "username": "alice", "password": "pw-audit-flush",
		"allow_private_network": true}); code >= 300 {
		t.Fatalf("add registry: %d %v", code, out)
	}
	h.api(t, "POST", "/api/v1/workspaces/acme/installs", map[string]any{"name": "web", "all_repos": true})
	_, out := h.api(t, "POST", "/api/v1/workspaces/acme/installs/web/tokens", map[string]any{})
	tok, _ := out["token"].(string)
	for i := 1; i <= 5; i++ {
		req, _ := http.NewRequest("GET", h.url+"/v2/registry.test/org/app/manifests/v1", nil)
		req.SetBasicAuth("x", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("pull: %d", resp.StatusCode)
		}
		code, body := h.api(t, "GET", "/api/v1/audit?workspace=acme&since=1h", nil)
		var evs []json.RawMessage
		if raw, err := json.Marshal(body["events"]); err == nil {
			_ = json.Unmarshal(raw, &evs)
		}
		if code != http.StatusOK || len(evs) != i {
			t.Fatalf("audit right after pull %d: %d, %d events", i, code, len(evs))
		}
	}
}
