package imageref

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// Fuzz targets for the parsers every tenant- and client-supplied image
// name, host and allow-list pattern goes through. Run one with
//
//	go test -run '^$' -fuzz '^FuzzCanonicalHost$' -fuzztime 1m ./pkg/imageref/
//
// Plain `go test` replays the seeds below and testdata/fuzz.

// repoGrammar is distribution's repository path grammar
// (reference/regexp.go: path-component ( "/" path-component )*).
var repoGrammar = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

var hostSeeds = []string{
	"ghcr.io", "GHCR.io", "https://index.docker.io/v1/", "docker.io", "registry-1.docker.io",
	"127.0.0.1:5000", "[::1]:5000", "localhost", "localhost:0", "user:pw@ghcr.io", "ghcr.io/v2/",
	"http://registry.corp:8443/", " ghcr.io ", "a..b", "-a.com", "xn--80ak6aa92e.com", "ghcr.io:99999",
	"[fe80::1%25eth0]:5000", "ghcr.io/org", "",
}

func FuzzCanonicalHost(f *testing.F) {
	for _, s := range hostSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := CanonicalHost(in)
		if err != nil {
			if strings.Contains(in, "@") && len(in) > 1 && strings.Contains(err.Error(), in) {
				t.Fatalf("error echoes input with user info: %v", err)
			}
			boundedErr(t, err)
			return
		}
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, "/@?# \t\r\n") {
			t.Fatalf("CanonicalHost(%q) = %q: not a canonical host", in, h)
		}
		again, err := CanonicalHost(h)
		if err != nil || again != h {
			t.Fatalf("not idempotent: CanonicalHost(%q) = %q, then %q, %v", in, h, again, err)
		}
		if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
			t.Fatalf("CanonicalHost(%q) = %q, which ggcr refuses: %v", in, h, err)
		}
		if UpstreamAddr(h) == "" {
			t.Fatalf("no upstream address for %q", h)
		}
	})
}

func FuzzParseRepo(f *testing.F) {
	f.Add("docker.io", "nginx")
	f.Add("ghcr.io", "org/app")
	f.Add("index.docker.io", "library/nginx")
	f.Add("ghcr.io", "org/../app")
	f.Add("ghcr.io", "a__b/c-d.e")
	f.Add("ghcr.io", "Org/App")
	f.Add("ghcr.io", "/org")
	f.Add("docker.io", strings.Repeat("a", 255))
	f.Fuzz(func(t *testing.T, host, path string) {
		r, err := ParseRepo(host, path)
		if err != nil {
			boundedErr(t, err)
			return
		}
		checkRepo(t, r)
		again, err := ParseRepo(r.Host, r.Path)
		if err != nil || again != r {
			t.Fatalf("not idempotent: ParseRepo(%q, %q) = %+v, then %+v, %v", host, path, r, again, err)
		}
	})
}

// checkRepo holds for every repository the package accepts.
func checkRepo(t *testing.T, r Repo) {
	t.Helper()
	if h, err := CanonicalHost(r.Host); err != nil || h != r.Host {
		t.Fatalf("repo %+v: host not canonical (%q, %v)", r, h, err)
	}
	if !repoGrammar.MatchString(r.Path) {
		t.Fatalf("repo %+v: path outside distribution's grammar", r)
	}
	if len(r.Path) > 255 {
		t.Fatalf("repo %+v: path of %d bytes", r, len(r.Path))
	}
	for _, c := range strings.Split(r.Path, "/") {
		if c == "." || c == ".." {
			t.Fatalf("repo %+v: dot component", r)
		}
	}
	if r.Host == DockerHub && !strings.Contains(r.Path, "/") {
		t.Fatalf("repo %+v: Docker Hub path without namespace", r)
	}
	if want := "repository:" + r.Path + ":pull"; r.Scope() != want {
		t.Fatalf("scope %q", r.Scope())
	}
}

func FuzzParseImage(f *testing.F) {
	for _, s := range []string{
		"nginx", "nginx:1.27", "org/app", "ghcr.io/org/app:v1", "localhost:5000/app",
		"ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"GHCR.IO/org/app", "ghcr.io/org/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"127.0.0.1:5000/a/b/c:tag", "ghcr.io//app", "https://ghcr.io/app", "user@ghcr.io/app",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ref, err := ParseImage(s)
		if err != nil {
			boundedErr(t, err)
			return
		}
		checkRepo(t, r)
		if ref == "" {
			t.Fatalf("ParseImage(%q): empty reference", s)
		}
		sep := ":"
		if strings.Contains(ref, ":") {
			sep = "@"
		}
		r2, ref2, err := ParseImage(r.String() + sep + ref)
		if err != nil || r2 != r || ref2 != ref {
			t.Fatalf("round trip of %q: %+v %q, then %+v %q %v", s, r, ref, r2, ref2, err)
		}
	})
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"ghcr.io/org/*", "ghcr.io/org/**", "docker.io/nginx", "docker.io/*", "ghcr.io/**/app",
		"ghcr.io/a*b*c", "ghcr.io/***", "ghcr.io/", "/org", "ghcr.io/org/../x", "index.docker.io/library/nginx",
	} {
		f.Add(s, "ghcr.io", "org/app")
	}
	f.Add("ghcr.io/**/**/**/a*a*a*a*a*b", "ghcr.io", strings.Repeat("a/", 60)+"a")
	f.Fuzz(func(t *testing.T, s, host, path string) {
		p, err := ParsePattern(s)
		if err != nil {
			boundedErr(t, err)
			if Allowed([]string{s}, Repo{Host: host, Path: path}) {
				t.Fatalf("an invalid pattern %q allowed something", s)
			}
			return
		}
		p2, err := ParsePattern(p.String())
		if err != nil || p2.String() != p.String() || p2.Host != p.Host {
			t.Fatalf("round trip of %q: %q, then %q %v", s, p, p2, err)
		}
		if !strings.Contains(p.String(), "*") {
			// A pattern without wildcards names exactly one repository.
			r, err := ParseRepo(p.Host, strings.TrimPrefix(p.String(), p.Host+"/"))
			if err != nil {
				t.Fatalf("literal pattern %q is no repository: %v", p, err)
			}
			if !p.Match(r) {
				t.Fatalf("literal pattern %q does not match its own repository", p)
			}
		}
		r, err := ParseRepo(host, path)
		if err != nil {
			return
		}
		m := p.Match(r)
		if m != Allowed([]string{s}, r) {
			t.Fatalf("Match and Allowed disagree on %q / %s", s, r)
		}
		if m && p.Host != r.Host {
			t.Fatalf("pattern %q matched a repository on another host: %s", s, r)
		}
		if m && !strings.Contains(p.String(), "**") && strings.Count(p.String(), "/") != strings.Count(r.String(), "/") {
			t.Fatalf("pattern %q without ** matched %s with another number of components", s, r)
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"ghcr.io", "ghcr.io/org-a", "https://index.docker.io/v1/", "docker.io/v2", "http://registry.corp",
		"ghcr.io/org/", "ghcr.io//org", "127.0.0.1:5000/team", "u:p@ghcr.io",
	} {
		f.Add(s, "org-a/app")
	}
	f.Fuzz(func(t *testing.T, s, path string) {
		p, err := ParsePrefix(s)
		if err != nil {
			boundedErr(t, err)
			// User info is an '@' in the host part; one in the path is only
			// a bad path.
			hostPart, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(s), "https://"), "/")
			if strings.Contains(hostPart, "@") && len(s) > 1 && strings.Contains(err.Error(), s) {
				t.Fatalf("error echoes input with user info: %v", err)
			}
			return
		}
		p2, err := ParsePrefix(p.String())
		if err != nil || p2 != p {
			t.Fatalf("round trip of %q: %+v, then %+v %v", s, p, p2, err)
		}
		if p.Path != "" {
			if !repoGrammar.MatchString(p.Path) {
				t.Fatalf("prefix %q: path outside the grammar", p)
			}
			if _, ok := p.Match(Repo(p)); !ok {
				t.Fatalf("prefix %q does not match itself", p)
			}
		}
		r, err := ParseRepo(p.Host, path)
		if err != nil {
			return
		}
		n, ok := p.Match(r)
		if ok && p.Path != "" && r.Path != p.Path && !strings.HasPrefix(r.Path, p.Path+"/") {
			t.Fatalf("prefix %q matched %s across a component boundary", p, r)
		}
		if ok && n != len(p.Path) {
			t.Fatalf("prefix %q matched %s with length %d", p, r, n)
		}
	})
}

// boundedErr: errors quote at most a clipped piece of their input, since
// they reach clients and logs.
func boundedErr(t *testing.T, err error) {
	t.Helper()
	if n := len(err.Error()); n > 1024 {
		t.Fatalf("error of %d bytes: %.200s...", n, err)
	}
}

func FuzzRegistryOnly(f *testing.F) {
	for _, s := range []string{"ghcr.io", "localhost:5000", "nginx:1.27", "ghcr.io/org/app", "127.0.0.1:5000", "a.b:", "a.b:x", "user@ghcr.io"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !RegistryOnly(s) {
			return
		}
		if strings.ContainsAny(s, "/@ \t\r\n") || s == "" {
			t.Fatalf("RegistryOnly(%q): a registry has no path, user info or space", s)
		}
		if h, port, ok := strings.Cut(s, ":"); ok && (port == "" || strings.Trim(port, "0123456789") != "" || (h != "localhost" && !strings.Contains(h, "."))) {
			t.Fatalf("RegistryOnly(%q): not host:port", s)
		}
	})
}
