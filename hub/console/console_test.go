package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// Every answer, 404s included, carries the security headers: a strict
// CSP without inline script, and no framing (clickjacking).
func TestSecurityHeaders(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/assets/js/app.js", "/assets/console.css", "/nope", "/assets/"} {
		rec := get(t, h, "GET", p)
		hd := rec.Header()
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
			t.Errorf("%s: CSP %q allows inline, eval or any origin", p, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if hd.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", p, k, hd.Get(k), v)
			}
		}
	}
}

func TestRoutes(t *testing.T) {
	h := Handler()
	cases := []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/", 200, "text/html"},
		{"HEAD", "/", 200, "text/html"},
		{"GET", "/assets/js/app.js", 200, "text/javascript"},
		{"GET", "/assets/console.css", 200, "text/css"},
		{"GET", "/assets/icon.svg", 200, "image/svg+xml"},
		// Only the page and its files: the console claims nothing else,
		// so it shadows neither the API nor the registry protocol.
		{"GET", "/api/v1/workspaces", 404, ""},
		{"GET", "/v2/", 404, ""},
		{"GET", "/auth/token", 404, ""},
		{"GET", "/assets/", 404, ""},    // no directory listings
		{"GET", "/assets/js/", 404, ""}, // no directory listings
		{"GET", "/assets/../console.go", 404, ""},
		{"GET", "/assets/index.html", 404, ""},
		{"POST", "/", 405, ""},
		{"DELETE", "/assets/js/app.js", 405, ""},
	}
	for _, c := range cases {
		rec := get(t, h, c.method, c.path)
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.status)
		}
		if c.ctype != "" && !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", c.method, c.path, rec.Header().Get("Content-Type"), c.ctype)
		}
	}
}

// The page and its scripts hold no inline script, no event-handler
// attribute, nothing loaded from elsewhere, no HTML parsing of data
// (innerHTML and friends), and no field that looks like a secret baked in.
func TestAssetsAreSelfContained(t *testing.T) {
	sub, _ := fs.Sub(assets, "assets")
	bad := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"inline script", regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"script without src", regexp.MustCompile(`<script(?:(?:\s(?:type|defer|async)(?:="[^"]*")?)*)\s*>`)},
		{"event-handler attribute", regexp.MustCompile(`<[^>]+\son[a-z]+\s*=`)},
		{"inline style attribute", regexp.MustCompile(`<[^>]+\sstyle\s*=`)},
		{"remote resource", regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//`)},
		{"remote import or fetch", regexp.MustCompile(`(?:import|fetch)\s*\(?\s*['"](?:https?:)?//`)},
		{"HTML parsing of strings", regexp.MustCompile(`innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment`)},
		{"eval", regexp.MustCompile(`\beval\(|new Function\(|setTimeout\(\s*['"]|setInterval\(\s*['"]`)},
		{"storage of a token", regexp.MustCompile(`(?:localStorage|sessionStorage)\.setItem\([^)]*(?:token|bearer|csrf|password)`)},
		{"secret-looking literal", regexp.MustCompile(`pgt_[A-Za-z0-9]{8,}|pgj_[A-Za-z0-9]{8,}|-----BEGIN|AKIA[0-9A-Z]{12}`)},
	}
	n := 0
	err := fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		f, _ := sub.Open(p)
		b, _ := io.ReadAll(f)
		f.Close()
		for _, x := range bad {
			if m := x.re.Find(b); m != nil {
				t.Errorf("%s: %s: %q", p, x.what, m)
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("walked %d assets: %v", n, err)
	}
}

// Secret fields are password inputs the browser neither fills in nor
// offers to remember, and the page never sets their value from data.
func TestSecretFields(t *testing.T) {
	sub, _ := fs.Sub(assets, "assets")
	pw := regexp.MustCompile(`type: 'password'[^}]*\}`)
	n := 0
	err := fs.WalkDir(sub, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(sub, p)
		for _, m := range pw.FindAll(b, -1) {
			n++
			if !regexp.MustCompile(`autocomplete: '(off|new-password)'`).Match(m) {
				t.Errorf("%s: password field without autocomplete off/new-password: %s", p, m)
			}
			if regexp.MustCompile(`\bvalue:`).Match(m) {
				t.Errorf("%s: password field with a preset value: %s", p, m)
			}
		}
		return nil
	})
	if err != nil || n < 3 { // login token, registry password, rotate
		t.Fatalf("found %d password fields: %v", n, err)
	}
}
