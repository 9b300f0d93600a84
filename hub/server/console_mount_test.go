package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The console at "/" shadows none of the hub's other routes: the registry
// protocol, its token endpoint, the API and the health checks answer as
// before, and unknown paths are 404.
func TestConsoleMountedBesideOtherRoutes(t *testing.T) {
	h, err := startHub(t, filepath.Join(t.TempDir(), "pullgate-data"), "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path   string
		status int
		header string // a header the owner of the route sets
		value  string
	}{
		{"/", 200, "Content-Security-Policy", "frame-ancestors 'none'"},
		{"/assets/js/app.js", 200, "Content-Type", "text/javascript"},
		{"/v2/", 401, "Www-Authenticate", "Bearer realm="},
		{"/api/v1/workspaces", 401, "Content-Type", "application/json"},
		{"/api/v1/nope", 401, "Content-Type", "application/json"},
		{"/healthz", 200, "", ""},
		{"/readyz", 200, "", ""},
		{"/metrics", 404, "", ""}, // on its own listener only
		{"/nope", 404, "X-Frame-Options", "DENY"},
	}
	for _, c := range cases {
		resp, err := http.Get(h.url + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.status)
		}
		if c.header != "" && !strings.Contains(resp.Header.Get(c.header), c.value) {
			t.Errorf("GET %s: %s = %q, want it to contain %q", c.path, c.header, resp.Header.Get(c.header), c.value)
		}
	}
}
