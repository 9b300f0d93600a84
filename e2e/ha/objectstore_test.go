//go:build e2e_ha

package ha

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testweed"
)

// startObjectStore runs SeaweedFS (S3, signed requests) with a bucket the
// three hubs share, and returns the hubs' cache flags.
func (e *env) startObjectStore() []string {
	t := e.t
	e.weed = testweed.Start(t)
	bucket := e.weed.Bucket(t)
	creds := filepath.Join(t.TempDir(), "s3-credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+e.weed.AccessKey+"\naws_secret_access_key = "+e.weed.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--cache-backend", "s3", "--cache-s3-endpoint", e.weed.Endpoint, "--cache-s3-bucket", bucket,
		"--cache-s3-prefix", "hub/", "--cache-s3-path-style", "--cache-s3-region", e.weed.Region, "--cache-s3-credentials-file", creds}
}

// metric sums the hub's series of name whose labels contain every one of
// labels (e.g. `result="hit"`).
func (h *hub) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + h.metrics + "/metrics")
	if err != nil {
		t.Fatalf("%s metrics: %v", h.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}

// getBlob pulls a blob through h and returns the status and the digest of
// what came.
func getBlob(t *testing.T, h *hub, repo, digest, tok string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(blobRequest(h, repo, digest, tok, ""))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, resp.Body); err != nil {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, "sha256:" + hex.EncodeToString(sum.Sum(nil))
}

// The object store every replica caches in goes away: pulls fall back to
// the upstream; once it is back, the cache serves again.
func testObjectStoreDown(t *testing.T, e *env) []string {
	img := e.up.PushRandomImage(t, "org/cached", "v1", 1, 2<<20)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := layers[0].Digest()
	dig := d.String()
	tok := e.agentToken(e.agents[0])
	hit := func(h *hub) float64 {
		return h.metric(t, "pullgate_cache_requests_total", `kind="blob"`, `result="hit"`)
	}
	pullAll := func(when string) {
		for _, h := range e.hubs {
			if code, got := getBlob(t, h, "org/cached", dig, tok); code != http.StatusOK || got != dig {
				t.Fatalf("%s: blob at %s: %d %s", when, h.name, code, got)
			}
		}
	}
	// Filled once through the first replica; the others serve it from the
	// shared bucket.
	if code, got := getBlob(t, e.hubs[0], "org/cached", dig, tok); code != http.StatusOK || got != dig {
		t.Fatalf("fill: %d %s", code, got)
	}
	for _, h := range e.hubs[1:] {
		before := hit(h)
		if code, got := getBlob(t, h, "org/cached", dig, tok); code != http.StatusOK || got != dig {
			t.Fatalf("blob at %s: %d %s", h.name, code, got)
		}
		if hit(h) <= before {
			t.Fatalf("%s did not serve the blob another replica cached from the shared bucket", h.name)
		}
	}

	e.weed.Stop()
	down := time.Now()
	fallbacks := make([]float64, len(e.hubs))
	for i, h := range e.hubs {
		fallbacks[i] = h.metric(t, "pullgate_cache_storage_fallbacks_total")
	}
	pullAll("object store down")
	for i, h := range e.hubs {
		if h.metric(t, "pullgate_cache_storage_fallbacks_total") <= fallbacks[i] {
			t.Fatalf("%s: no storage fallback counted while the object store is down", h.name)
		}
	}
	t.Logf("object store down: every replica served the blob from the upstream (%v)", time.Since(down).Round(time.Millisecond))

	e.weed.Restart()
	back := time.Now()
	for _, h := range e.hubs {
		waitFor(t, 60*time.Second, h.name+" serves from the cache again", func() bool {
			before := hit(h)
			code, got := getBlob(t, h, "org/cached", dig, tok)
			return code == http.StatusOK && got == dig && hit(h) > before
		})
		t.Logf("%s serves from the shared cache again %v after the object store is back", h.name, time.Since(back).Round(time.Millisecond))
	}
	return []string{tok}
}
