package containerd

import (
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzRender: hosts.toml for a fuzzed upstream host, hub URL and hub CA,
// read back by a real TOML parser (the one containerd uses). Properties:
// it parses, holds exactly server, override_path, capabilities (and ca),
// with the values given: a host, URL or path can never add a table or a
// key, e.g. a fallback [host] entry or a second server.
func FuzzRender(f *testing.F) {
	for _, s := range [][3]string{
		{"ghcr.io", "https://hub.example.com", ""},
		{"registry.corp:5000", "http://127.0.0.1:5080/base/", "/etc/pullgate/ca.crt"},
		{"docker.io", "https://hub.example.com/v2", ""},
		{"a\"]\n[host.\"https://evil\"]\nx", "https://hub/\"\nserver = \"https://evil\"", "/ca\"\n[host]"},
		{"_default", "https://h/%22%0a", "/a'b"},
		{"[::1]:5000", "https://[::1]:443", ""},
		// Found by fuzzing: Go's %q wrote these bytes as \x.. escapes,
		// which a TOML parser reads as other characters.
		{"ghcr.io", "http://\x93", ""},
		{"ghcr.io", "https://hub.example.com", "/etc/\x01ca\x93.crt"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, host, hubURL, ca string) {
		var opts []Option
		if ca != "" {
			opts = append(opts, WithHubCA(ca))
		}
		m, err := New("/etc/containerd/certs.d", hubURL, opts...)
		if err != nil {
			return
		}
		h, err := checkHost(host)
		if err != nil {
			return
		}
		out := m.Render(h)
		var doc map[string]any
		if err := toml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("rendered hosts.toml does not parse: %v\n%s", err, out)
		}
		want := []string{"capabilities", "override_path", "server"}
		if ca != "" {
			want = append(want, "ca")
		}
		var keys []string
		for k := range doc {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("keys %v, want %v\n%s", keys, want, out)
		}
		if doc["server"] != m.server || !strings.HasSuffix(m.server, "/v2") {
			t.Fatalf("server %q, want %q", doc["server"], m.server)
		}
		if doc["override_path"] != true {
			t.Fatalf("override_path %v", doc["override_path"])
		}
		if c, _ := doc["capabilities"].([]any); len(c) != 2 || c[0] != "pull" || c[1] != "resolve" {
			t.Fatalf("capabilities %v", doc["capabilities"])
		}
		if ca != "" && doc["ca"] != ca {
			t.Fatalf("ca %q, want %q", doc["ca"], ca)
		}
		if p := m.Path(h); !strings.HasPrefix(p, m.Dir()+"/") || strings.Count(p[len(m.Dir())+1:], "/") != 1 {
			t.Fatalf("path %q escapes %s", p, m.Dir())
		}
	})
}
