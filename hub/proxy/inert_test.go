package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// A tenant's registry serves a "manifest" that is an HTML page with
// script: through the hub (same origin as the console) it must reach a
// browser inert, and so must every other answer of the pull API.
func TestUpstreamHTMLIsInert(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "html-SECRET"))
	page := `<html><script>fetch('/api/v1/session').then(r=>r.json()).then(j=>alert(j.csrf_token))</script></html>`
	req, _ := http.NewRequest(http.MethodPut, up.URL+"/v2/org/app/manifests/evil", strings.NewReader(page))
	req.SetBasicAuth("alice", "html-SECRET")
	req.Header.Set("Content-Type", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push the page: %d", resp.StatusCode)
	}
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, "html-SECRET")
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)
	browser := []string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, c := range []struct {
		name, path, tok string
		code            int
	}{
		{"html manifest", "/v2/" + upstreamHost + "/org/app/manifests/evil", tok, 200},
		{"html manifest, mirror form", "/v2/org/app/manifests/evil?ns=" + upstreamHost, tok, 200},
		{"tag list", "/v2/" + upstreamHost + "/org/app/tags/list", tok, 200},
		{"no token", "/v2/" + upstreamHost + "/org/app/manifests/evil", "", 401},
		{"ping", "/v2/", tok, 200},
		{"token endpoint", "/auth/token?service=x", "", 401},
	} {
		resp := f.get(http.MethodGet, c.path, c.tok, browser...)
		body := readBody(t, resp)
		if resp.StatusCode != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.code)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Content-Type %q served with Content-Security-Policy %q, X-Content-Type-Options %q: a browser would run it",
				c.name, resp.Header.Get("Content-Type"), csp, resp.Header.Get("X-Content-Type-Options"))
		}
	}
}
