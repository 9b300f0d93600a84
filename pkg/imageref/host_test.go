package imageref

import (
	"strings"
	"testing"
)

// TestHostOptions: each option set is one caller's rule (the default is
// CanonicalHost; the others are sdl.CheckHubHost, containerd's mirror
// directories and dockercred.Host).
func TestHostOptions(t *testing.T) {
	hub := []HostOption{HostLabel("hub host"), HostPaths("/"), KeepAliases(), AnyAuthority(), LowerCaseScheme()}
	mirror := []HostOption{Exact()}
	server := []HostOption{ServerURL()}
	image := []HostOption{OfImage()}
	cases := []struct {
		name string
		opts []HostOption
		in   string
		want string // "" when refused
		msg  string // part of the error when refused
	}{
		{"default plain", nil, "ghcr.io", "ghcr.io", ""},
		{"default case and space", nil, " GHCR.io ", "ghcr.io", ""},
		{"default scheme", nil, "https://ghcr.io", "ghcr.io", ""},
		{"default upper scheme", nil, "HTTPS://ghcr.io", "ghcr.io", ""},
		{"default docker hub v1", nil, "https://index.docker.io/v1/", "docker.io", ""},
		{"default docker hub v2", nil, "registry-1.docker.io/v2", "docker.io", ""},
		{"default port", nil, "127.0.0.1:5000", "127.0.0.1:5000", ""},
		{"default ipv6", nil, "[::1]:5000", "[::1]:5000", ""},
		{"default path", nil, "ghcr.io/org", "", `registry host "ghcr.io/org": unexpected path "/org"`},
		{"default user info", nil, "u:pw@ghcr.io", "", "registry host must not contain user info ('@')"},
		{"default empty", nil, "https://", "", `registry host "https://": empty`},
		{"default port zero", nil, "ghcr.io:0", "", "port must be 1-65535"},
		{"default port huge", nil, "ghcr.io:70000", "", "port must be 1-65535"},
		{"default underscore", nil, "a_b.example", "", "not a host name"},
		{"default query", nil, "ghcr.io?x", "", "not a valid host[:port]"},
		{"default space inside", nil, "gh cr.io", "", "not a valid host[:port]"},

		{"hub plain", hub, "hub.example:8443", "hub.example:8443", ""},
		{"hub url", hub, "https://Hub.Example/", "hub.example", ""},
		{"hub keeps aliases", hub, "index.docker.io", "index.docker.io", ""},
		{"hub any authority", hub, "hub_1.example", "hub_1.example", ""},
		{"hub path", hub, "hub/x", "", "hub host"},
		{"hub v2 path", hub, "hub.example/v2", "", "hub host"},
		{"hub user info", hub, "u:pw@hub", "", "hub host must not contain user info"},
		{"hub empty", hub, " / ", "", "hub host"},
		{"hub port", hub, "hub:99999", "", "hub host \"hub:99999\": port must be 1-65535"},
		{"hub upper-case scheme", hub, "HTTPS://hub.example", "", "hub host"},
		{"hub fragment", hub, "hub#x", "", "hub host"},

		{"mirror canonical", mirror, "ghcr.io", "ghcr.io", ""},
		{"mirror port", mirror, "127.0.0.1:5000", "127.0.0.1:5000", ""},
		{"mirror upper", mirror, "GHCR.io", "", "not in canonical form"},
		{"mirror alias", mirror, "index.docker.io", "", "not in canonical form"},
		{"mirror scheme", mirror, "https://ghcr.io", "", "not in canonical form"},
		{"mirror dot dot", mirror, "..", "", "registry host"},
		{"mirror default", mirror, "_default", "", "registry host"},

		{"image", image, "GHCR.io/org/app:1", "ghcr.io", ""},
		{"image docker hub", image, "nginx", "docker.io", ""},
		{"image alias", image, "index.docker.io/library/nginx@sha256:" + strings.Repeat("a", 64), "docker.io", ""},
		{"image bare host", image, "Registry.Example:5000", "registry.example:5000", ""},
		{"image bare docker hub", image, "registry-1.docker.io", "docker.io", ""},
		{"image bad port reads as a tag", image, "ghcr.io:99999", "docker.io", ""},
		{"image invalid", image, "ghcr.io/Org/App", "", "not a valid image reference"},

		{"server host", server, "ghcr.io", "ghcr.io", ""},
		{"server docker v1", server, "https://index.docker.io/v1/", "index.docker.io", ""},
		{"server any scheme", server, "tcp://reg.example:5000/x?y#z", "reg.example:5000", ""},
		{"server upper", server, "GHCR.IO/", "ghcr.io", ""},
		{"server localhost", server, "localhost:5000", "localhost:5000", ""},
		{"server image", server, "nginx", "", `server URL: "nginx" is not a registry host`},
		{"server tag", server, "ghcr.io:tag", "", "is not a registry host"},
		{"server user info", server, "https://user:pw@ghcr.io", "", "server URL must not contain user info"},
		{"server control", server, "https://\f.", "", "server URL: the host has spaces or control characters"},
		{"server empty", server, "", "", "is not a registry host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Host(c.in, c.opts...)
			if c.want != "" {
				if err != nil || got != c.want {
					t.Fatalf("Host(%q) = %q, %v; want %q", c.in, got, err, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Host(%q) = %q; want an error", c.in, got)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Host(%q): %v; want it to contain %q", c.in, err, c.msg)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("Host(%q): error echoes user info: %v", c.in, err)
			}
		})
	}
}

func TestLooksLikeHost(t *testing.T) {
	for s, want := range map[string]bool{
		"ghcr.io": true, "localhost": true, "reg:5000": true, "nginx": false, "library": false, "Localhost": false, "": false,
	} {
		if got := LooksLikeHost(s); got != want {
			t.Errorf("LooksLikeHost(%q) = %v, want %v", s, got, want)
		}
	}
}
