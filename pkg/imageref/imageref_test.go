package imageref

import (
	"strings"
	"testing"
)

func TestCanonicalHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docker.io", "docker.io"},
		{"index.docker.io", "docker.io"},
		{"https://index.docker.io/v1/", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"GHCR.io", "ghcr.io"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"localhost:5000", "localhost:5000"},
		{"[::1]:5000", "[::1]:5000"},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
	}
	for _, tc := range tests {
		got, err := CanonicalHost(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ghcr.io/org", "user@ghcr.io", "ghcr.io:", "a b", "ghcr.io?x=1", "http://", "not_a_host!", "a..b", "-x.io", "ghcr.io:0", "ghcr.io:99999", "ghcr.io:http"} {
		if got, err := CanonicalHost(bad); err == nil {
			t.Errorf("CanonicalHost(%q) = %q, want error", bad, got)
		}
	}
	if UpstreamAddr("docker.io") != "registry-1.docker.io" || UpstreamAddr("ghcr.io") != "ghcr.io" {
		t.Error("UpstreamAddr")
	}
}

func TestParseRepo(t *testing.T) {
	good := []struct{ host, path, want string }{
		{"docker.io", "nginx", "docker.io/library/nginx"},
		{"index.docker.io", "bitnami/redis", "docker.io/bitnami/redis"},
		{"ghcr.io", "org/app", "ghcr.io/org/app"},
		{"ghcr.io", "org/sub/app_x-1.2", "ghcr.io/org/sub/app_x-1.2"},
	}
	for _, tc := range good {
		r, err := ParseRepo(tc.host, tc.path)
		if err != nil || r.String() != tc.want {
			t.Errorf("ParseRepo(%q, %q) = %v, %v; want %q", tc.host, tc.path, r, err, tc.want)
		}
	}
	for _, bad := range []string{"", "..", "org/../etc", "org/./app", "Org/App", "org//app", "/org", "org/", "a%2e%2e", "-x", "x_"} {
		if r, err := ParseRepo("ghcr.io", bad); err == nil {
			t.Errorf("ParseRepo(ghcr.io, %q) = %v, want error", bad, r)
		}
	}
}

func TestParseImage(t *testing.T) {
	r, ref, err := ParseImage("nginx")
	if err != nil || r.String() != "docker.io/library/nginx" || ref != "latest" {
		t.Fatalf("nginx: %v %q %v", r, ref, err)
	}
	r, ref, err = ParseImage("ghcr.io/org/app@sha256:" + "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2")
	if err != nil || r.String() != "ghcr.io/org/app" || ref[:7] != "sha256:" {
		t.Fatalf("digest: %v %q %v", r, ref, err)
	}
	if _, _, err := ParseImage("ghcr.io/Org/App:1"); err == nil {
		t.Fatal("upper case accepted")
	}
}

func TestPrefixMatch(t *testing.T) {
	repo := Repo{Host: "ghcr.io", Path: "org-a/app"}
	tests := []struct {
		prefix string
		n      int
		ok     bool
	}{
		{"ghcr.io", 0, true},
		{"ghcr.io/org-a", 5, true},
		{"ghcr.io/org-a/app", 9, true},
		{"ghcr.io/org", 0, false}, // not a component boundary
		{"ghcr.io/org-b", 0, false},
		{"docker.io", 0, false},
	}
	for _, tc := range tests {
		p, err := ParsePrefix(tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := p.Match(repo)
		if n != tc.n || ok != tc.ok {
			t.Errorf("%s.Match = %d,%v want %d,%v", tc.prefix, n, ok, tc.n, tc.ok)
		}
	}
	if p, err := ParsePrefix("https://index.docker.io/v1/"); err != nil || p.String() != "docker.io" {
		t.Errorf("docker hub v1 form: %v %v", p, err)
	}
	for _, bad := range []string{"ghcr.io/../x", "", "ghcr.io/Org"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern, repo string
		want          bool
	}{
		{"ghcr.io/org/*", "ghcr.io/org/app", true},
		{"ghcr.io/org/*", "ghcr.io/org/sub/app", false},
		{"ghcr.io/org/**", "ghcr.io/org/sub/app", true},
		{"ghcr.io/org/**", "ghcr.io/other/app", false},
		{"ghcr.io/org/app-*", "ghcr.io/org/app-web", true},
		{"ghcr.io/org/app-*", "ghcr.io/org/db", false},
		{"docker.io/nginx", "docker.io/library/nginx", true},
		{"index.docker.io/library/*", "docker.io/library/redis", true},
		{"ghcr.io/**", "docker.io/library/redis", false},
		{"ghcr.io/org/app", "ghcr.io/org/app", true},
		{"ghcr.io/org/app", "ghcr.io/org/app2", false},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
		}
		r, _, err := ParseImage(tc.repo)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(r); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
	for _, bad := range []string{"ghcr.io", "ghcr.io/", "org/app/..", "ghcr.io/../x", "ghcr.io/Org/*", "/x"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

func TestPatternMatchIsNotExponential(t *testing.T) {
	// A backtracking matcher takes ages on this; the two-pointer one does not.
	pat, err := ParsePattern("ghcr.io/" + strings.Repeat("**/", 20) + "x")
	if err != nil {
		t.Fatal(err)
	}
	repo := Repo{Host: "ghcr.io", Path: strings.TrimSuffix(strings.Repeat("a/", 60), "/")}
	if pat.Match(repo) {
		t.Fatal("matched")
	}
	if globComponent(strings.Repeat("*a", 30)+"b", strings.Repeat("a", 200)) {
		t.Fatal("glob matched")
	}
}

func TestHostErrorsDoNotEchoUserInfo(t *testing.T) {
	for _, in := range []string{"user:hunter2@ghcr.io", "https://user:hunter2@ghcr.io/org"} {
		_, err1 := CanonicalHost(in)
		_, err2 := ParsePrefix(in)
		for _, err := range []error{err1, err2} {
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("%q: %v", in, err)
			}
		}
	}
	if _, err := ParsePrefix("http://registry.corp"); err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Fatalf("http:// host: %v", err)
	}
}

func TestCheckPublicHost(t *testing.T) {
	for _, ok := range []string{"ghcr.io", "docker.io", "registry.corp.example:5000", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "registry.test"} {
		if err := CheckPublicHost(ok); err != nil {
			t.Errorf("CheckPublicHost(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:25090", "10.1.2.3", "192.168.1.10:5000", "169.254.169.254", "100.64.0.1",
		"[::1]:5000", "[fd00::1]", "[fe80::1]:80", "localhost:5000", "localhost", "registry.localhost", "nas.local",
		"metadata.google.internal", "router.home.arpa", "registry", "registry:5000"} {
		if err := CheckPublicHost(bad); err == nil {
			t.Errorf("CheckPublicHost(%q) accepted", bad)
		}
	}
}
