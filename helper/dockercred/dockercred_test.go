package dockercred

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker-credential-helpers/credentials"
)

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io":                     "ghcr.io",
		"https://ghcr.io":             "ghcr.io",
		"https://index.docker.io/v1/": "index.docker.io",
		"http://127.0.0.1:5000":       "127.0.0.1:5000",
		"GHCR.IO/":                    "ghcr.io",
		"localhost:5000":              "localhost:5000",
		" registry.example.com:443\n": "registry.example.com:443",
	} {
		if got, err := Host(in); err != nil || got != want {
			t.Errorf("Host(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "nginx", "https://user:pw@ghcr.io", "ghcr.io:tag"} {
		if got, err := Host(in); err == nil {
			t.Errorf("Host(%q) = %q, want an error", in, got)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("Host(%q) error leaks user info", in)
		}
	}
}

func TestReadOnly(t *testing.T) {
	h := New("/nonexistent.sock")
	for _, action := range []string{"store", "erase", "list"} {
		in := strings.NewReader(`{"ServerURL":"ghcr.io","Username":"u","Secret":"topsecret"}`)
		if action == "erase" {
			in = strings.NewReader("ghcr.io\n")
		}
		var out bytes.Buffer
		err := credentials.HandleCommand(h, action, in, &out)
		if err == nil || !errors.Is(err, ErrReadOnly) || !strings.HasPrefix(err.Error(), action+": ") ||
			!strings.Contains(err.Error(), "only get is supported") || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: %v", action, err)
		}
	}
}
