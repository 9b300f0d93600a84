package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/cli"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// runCLI runs pullgate-hub's operator CLI against h.
func runCLI(t *testing.T, h *hub, args ...string) (int, string, string) {
	t.Helper()
	root := cli.NewRoot()
	root.SetArgs(append([]string{"--hub", h.url, "--token", h.adminToken(t)}, args...))
	var out, errOut testlog.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	code := cli.Execute(context.Background(), root)
	return code, out.String(), errOut.String()
}

// pullInstall sets up workspace acme with up as registry.test (basic
// auth) and an install web of all its repositories, and returns a token
// of web.
func pullInstall(t *testing.T, h *hub, up *testupstream.Registry) string {
	t.Helper()
	h.api(t, "POST", "/api/v1/workspaces", api.CreateWorkspaceRequest{Name: "acme"})
	if code, out := h.api(t, "POST", "/api/v1/workspaces/acme/registries", api.CreateRegistryRequest{
		Name: "reg", Host: "registry.test", Endpoint: up.URL, Kind: "basic", Username: up.User, Password: api.Password(up.Password), Insecure: true, AllowPrivateNetwork: true,
	}); code != http.StatusCreated {
		t.Fatalf("add registry: %d %v", code, out)
	}
	h.api(t, "POST", "/api/v1/workspaces/acme/installs", api.CreateInstallRequest{Name: "web", AllRepos: true})
	_, tok := h.api(t, "POST", "/api/v1/workspaces/acme/installs/web/tokens", api.MintTokenRequest{TTL: "10m"})
	return tok["token"].(string)
}

// pullFirstLayer pulls image (host/repo:tag) through h with tok and reads
// its first layer to the end.
func pullFirstLayer(t *testing.T, h *hub, image, tok string) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(h.url, "http://") + "/" + image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "x", Password: tok}))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	return img
}

// The cache as an operator sees it in a real hub (cache on by default):
// `cache warm` pre-pulls an image with the workspace's credential, an
// install's pull is then served from the cache (no second upstream blob
// GET, audit says hit), and stats, list, evict and /metrics show it.
func TestServeCacheWarmStatsListEvict(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "cache-SECRET-pw"))
	img, layer := up.PushBlobImage(t, "org/app", "v1", 1<<20)
	h, err := startHub(t, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	tok := pullInstall(t, h, up)
	up.ResetLog()

	image := "registry.test/org/app:v1"
	code, out, errOut := runCLI(t, h, "cache", "warm", "-w", "acme", image)
	if code != 0 || !strings.Contains(out, layer.String()) {
		t.Fatalf("cache warm: exit %d\n%s\n%s", code, out, errOut)
	}
	blobGets := func() int {
		n := 0
		for _, r := range up.Log() {
			if r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/") {
				n++
			}
		}
		return n
	}
	if n := blobGets(); n != 2 { // config and layer
		t.Fatalf("warm made %d blob GETs, want 2", n)
	}

	got := pullFirstLayer(t, h, image, tok)
	if gd, _ := got.Digest(); gd != mustDigest(t, img) {
		t.Fatal("wrong image through the cache")
	}
	if n := blobGets(); n != 2 {
		t.Fatalf("pull after warm went upstream: %d blob GETs", n)
	}

	// Audit: the install's layer request was a hit.
	var hit bool
	for i := 0; i < 50 && !hit; i++ {
		_, aud := h.api(t, "GET", "/api/v1/audit?workspace=acme", nil)
		evs, _ := aud["events"].([]any)
		for _, e := range evs {
			m := e.(map[string]any)
			if m["reference"] == layer.String() && m["cache"] == "hit" {
				hit = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !hit {
		t.Fatal("no audit event says the layer was a cache hit")
	}

	code, out, _ = runCLI(t, h, "cache", "stats", "-o", "json")
	var st api.CacheStats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Entries != 3 || st.Hits == 0 || st.Misses != 0 {
		t.Fatalf("cache stats: exit %d %s", code, out)
	}
	code, out, _ = runCLI(t, h, "cache", "list")
	if code != 0 || !strings.Contains(out, layer.String()) {
		t.Fatalf("cache list: exit %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, h, "cache", "evict", layer.String()); code != 0 {
		t.Fatalf("cache evict: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, h, "cache", "evict", layer.String()); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("evict of an evicted entry: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, h, "cache", "evict", "not-a-digest"); code != 1 || !strings.Contains(errOut, "digest") {
		t.Fatalf("evict of a bad digest: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, h, "cache", "warm", "-w", "acme", "UPPER CASE"); code != 1 || !strings.Contains(errOut, "image") {
		t.Fatalf("warm of a bad reference: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, h, "cache", "warm", "-w", "acme", "other.example/org/app:v1"); code != 1 || !strings.Contains(errOut, "no registry credential") {
		t.Fatalf("warm without a credential: exit %d %s", code, errOut)
	}

	_, metrics := get(t, h.mon+"/metrics")
	for _, want := range []string{`pullgate_cache_requests_total{kind="blob",result="hit"}`, "pullgate_cache_upstream_bytes_saved_total",
		"pullgate_cache_evictions_total 1", "pullgate_cache_bytes ", "pullgate_cache_fill_bytes_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out+metrics+h.logs.String(), up.Password) {
		t.Fatal("the upstream password leaked")
	}
}

func TestServeCacheOff(t *testing.T) {
	cfg := Config{}
	cfg.Cache.Proxy.ConfirmTTL = time.Minute
	if err := cacheFlags(&cfg, "off", "1GiB"); err != nil || !cfg.Cache.Off {
		t.Fatalf("--cache off: %v", err)
	}
	for _, tc := range []struct{ mode, size, want string }{
		{"maybe", "1GiB", "--cache"},
		{"on", "lots", "--cache-size"},
		{"on", "10KiB", "at least 1MiB"},
		{"on", "1.5XB", "unknown unit"},
	} {
		cfg := Config{}
		cfg.Cache.Proxy.ConfirmTTL = time.Minute
		if err := cacheFlags(&cfg, tc.mode, tc.size); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cacheFlags(%q, %q) = %v, want an error naming %s", tc.mode, tc.size, err, tc.want)
		}
	}
	for in, want := range map[string]int64{"20GiB": 20 << 30, "512MiB": 512 << 20, "1G": 1 << 30, "1GB": 1e9, "4096": 4096, "1.5KiB": 1536} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func mustDigest(t *testing.T, img interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
