package api

import (
	"strings"
	"testing"
)

// Without a cache (serve --cache off) the cache routes answer 501 and
// name the flag; bad input is refused before that matters.
func TestCacheRoutesWithoutCache(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/cache", ""},
		{"GET", "/api/v1/cache/entries", ""},
		{"DELETE", "/api/v1/cache/entries/sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""},
		{"POST", "/api/v1/cache/warm", `{"workspace":"acme","images":["ghcr.io/acme/app:v1"]}`},
	} {
		var out Error
		e.must(tc.method, tc.path, tc.body, 501, &out)
		if out.Error == "" || !strings.Contains(out.Error, "--cache off") {
			t.Errorf("%s %s: %q", tc.method, tc.path, out.Error)
		}
	}
}
