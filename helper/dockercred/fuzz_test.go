package dockercred

import (
	"strings"
	"testing"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// FuzzHost: the server URL a docker tool passes on stdin of `get`.
// Properties: an accepted host is a lower-case registry host without
// user info, path or space, and Host is idempotent on it; errors are
// short and never quote user info.
func FuzzHost(f *testing.F) {
	for _, s := range []string{
		"ghcr.io", "https://index.docker.io/v1/", "http://127.0.0.1:5000", "HTTPS://GHCR.IO/v2/?x#y",
		"https://user:SECRET-pass@ghcr.io", "localhost:5000", "nginx", "ghcr.io/org/app", " registry.corp:443 ", "",
		// Found by fuzzing: the whole URL, user info included, was quoted.
		"//user:SECRET-pass@ghcr.io", "https://bad_host/?token=SECRET-in-query",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, serverURL string) {
		h, err := Host(serverURL)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			msg, _, _ := strings.Cut(err.Error(), " (want e.g.") // the fixed example text
			if i := strings.LastIndex(serverURL, "@"); i >= 4 && strings.Contains(msg, serverURL[:i]) {
				t.Fatal("error quotes user info")
			}
			if strings.Contains(serverURL, "SECRET") && strings.Contains(err.Error(), "SECRET") {
				t.Fatal("error quotes a secret of the URL")
			}
			return
		}
		if h != strings.ToLower(h) || strings.ContainsAny(h, "/@?# \t\r\n") || !imageref.RegistryOnly(h) {
			t.Fatalf("accepted %q as %q", serverURL, h)
		}
		if again, err := Host(h); err != nil || again != h {
			t.Fatalf("Host(%q) = %q, %v", h, again, err)
		}
	})
}
