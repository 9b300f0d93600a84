package sdl

import (
	"strings"
	"testing"
)

// Akash's own parser (yaml.v3 into structs) takes merge keys, ignores keys
// it does not know inside services and credentials, and reads the version
// as a tolerant semver; an import must not be stricter.
func TestParseLenientAsAkash(t *testing.T) {
	for _, tc := range []struct {
		name, src       string
		version         string
		host, user, img string
	}{
		{"version 2.2", "version: \"2.2\"\nservices:\n  web:\n    image: ghcr.io/org/web:1\n    credentials: {host: ghcr.io, username: u, password: lenient-pw-1}\n", "2.2", "ghcr.io", "u", "ghcr.io/org/web"},
		{"version v2.1", "version: v2.1\nservices:\n  web:\n    image: ghcr.io/org/web:1\n", "2.1", "", "", ""},
		{"version 2", "version: 2\nservices:\n  web:\n    image: nginx\n", "2.0", "", "", ""},
		{"version 2.1.3", "version: \"2.1.3\"\nservices:\n  web:\n    image: nginx\n", "2.1", "", "", ""},
		{"version 2.2.0", "version: 2.2.0\nservices:\n  web:\n    image: nginx\n", "2.2", "", "", ""},
		{"x- keys at the top and in credentials", "version: \"2.0\"\nx-note: kept\nservices:\n  web:\n    image: ghcr.io/org/web:1\n    x-owner: team-a\n    credentials:\n      host: ghcr.io\n      username: u\n      password: lenient-pw-2\n      x-rotated: \"2026-11\"\n",
			"2.0", "ghcr.io", "u", "ghcr.io/org/web"},
		{"merge key: service from an x- anchor", "version: \"2.0\"\nx-base: &base\n  image: ghcr.io/org/web:1\n  credentials: {host: ghcr.io, username: u, password: lenient-pw-3}\nservices:\n  web:\n    <<: *base\n    env: [A=1]\n",
			"2.0", "ghcr.io", "u", "ghcr.io/org/web"},
		{"merge key: own fields win, lists merge in order", "version: \"2.0\"\nx-a: &a {image: ghcr.io/org/a:1}\nx-b: &b {image: ghcr.io/org/b:1, credentials: {host: ghcr.io, username: b, password: lenient-pw-4}}\nservices:\n  web:\n    <<: [*a, *b]\n",
			"2.0", "ghcr.io", "b", "ghcr.io/org/a"},
		{"merge key in credentials", "version: \"2.0\"\nx-login: &login {host: ghcr.io, username: u}\nservices:\n  web:\n    image: ghcr.io/org/web:1\n    credentials:\n      <<: *login\n      password: lenient-pw-5\n",
			"2.0", "ghcr.io", "u", "ghcr.io/org/web"},
		{"explicit key overrides merged", "version: \"2.0\"\nx-base: &base {image: ghcr.io/org/old:1}\nservices:\n  web:\n    <<: *base\n    image: ghcr.io/org/new:1\n    credentials: {host: ghcr.io, username: u, password: lenient-pw-6}\n",
			"2.0", "ghcr.io", "u", "ghcr.io/org/new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Parse([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if doc.Version != tc.version || len(doc.Services) != 1 {
				t.Fatalf("version %q, %d services", doc.Version, len(doc.Services))
			}
			s := doc.Services[0]
			if tc.host == "" {
				if s.Credentials != nil {
					t.Fatalf("credentials %v", s.Credentials)
				}
				return
			}
			if s.Credentials == nil || s.Credentials.Host != tc.host || s.Credentials.Username != tc.user || s.Repo.String() != tc.img {
				t.Fatalf("service %+v credentials %v", s, s.Credentials)
			}
		})
	}
}

// Merge keys expanding without bound are refused, not followed.
func TestParseMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: \"2.0\"\nx-0: &m0 {k0: v}\n")
	for i := 1; i <= 12; i++ {
		p := itoa(i - 1)
		b.WriteString("x-" + itoa(i) + ": &m" + itoa(i) + " {<<: [*m" + p + ", *m" + p + ", *m" + p + ", *m" + p + "], k" + itoa(i) + ": v}\n")
	}
	b.WriteString("services:\n  web:\n    <<: *m12\n    image: nginx\n")
	_, err := Parse([]byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "merge keys (<<) nest deeper than 8") {
		t.Fatalf("merge bomb: %v", err)
	}
}

func TestRewriteLenient(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	t.Run("tag and digest keep the tag", func(t *testing.T) {
		src := "version: \"2.0\"\nservices:\n  web:\n    image: ghcr.io/org/app:1.0@" + digest + "\n    credentials: {host: ghcr.io, username: u, password: lenient-pw-7}\n"
		out, warn, err := mustParse(t, []byte(src)).Rewrite(testHub)
		if err != nil || len(warn) != 0 {
			t.Fatal(err, warn)
		}
		want := "image: " + testHub + "/ghcr.io/org/app:1.0@" + digest + "\n"
		if !strings.Contains(string(out), want) {
			t.Fatalf("rewritten:\n%s\nwant %s", out, want)
		}
		if s := mustParse(t, out).Services[0]; s.Image != testHub+"/ghcr.io/org/app:1.0@"+digest {
			t.Fatalf("rewritten image %q", s.Image)
		}
	})
	t.Run("a registry with a port is left alone with a warning", func(t *testing.T) {
		src := "version: \"2.0\"\nservices:\n  a:\n    image: registry.corp:5000/x/a:1\n    credentials: {host: \"registry.corp:5000\", username: u, password: lenient-PORT-pw}\n" +
			"  b:\n    image: ghcr.io/x/b:1\n    credentials: {host: ghcr.io, username: u, password: lenient-GHCR-pw}\n"
		out, warn, err := mustParse(t, []byte(src)).Rewrite(testHub)
		if err != nil {
			t.Fatal(err)
		}
		if len(warn) != 1 || !strings.Contains(warn[0], "services.a.image: registry.corp:5000/x/a:1 is on registry.corp:5000") ||
			!strings.Contains(warn[0], "image left as it is, credentials removed") || !strings.Contains(warn[0], "containerd mirror for registry.corp:5000") {
			t.Fatalf("warnings %q", warn)
		}
		doc := mustParse(t, out)
		if a, b := doc.Services[0], doc.Services[1]; a.Image != "registry.corp:5000/x/a:1" || a.Credentials != nil || b.Image != testHub+"/ghcr.io/x/b:1" || b.Credentials != nil {
			t.Fatalf("rewritten:\n%s", out)
		}
		if strings.Contains(string(out), "lenient-GHCR-pw") || strings.Contains(string(out), "lenient-PORT-pw") {
			t.Fatalf("password left:\n%s", out)
		}
		// Again: the same document, nothing more to do.
		if again, _, err := doc.Rewrite(testHub); err != nil || string(again) != string(out) {
			t.Fatalf("second rewrite (%v):\n%s", err, again)
		}
	})
	t.Run("image from a merge key", func(t *testing.T) {
		src := "version: \"2.0\"\nx-base: &base {image: ghcr.io/org/web:1, env: [A=1]}\nservices:\n  web:\n    <<: *base\n    credentials: {host: ghcr.io, username: u, password: lenient-pw-8}\n  other:\n    <<: *base\n"
		out, _, err := mustParse(t, []byte(src)).Rewrite(testHub)
		if err != nil {
			t.Fatal(err)
		}
		doc := mustParse(t, out)
		if len(doc.Private()) != 0 || doc.Services[0].Image != testHub+"/ghcr.io/org/web:1" || doc.Services[1].Image != "ghcr.io/org/web:1" {
			t.Fatalf("rewritten:\n%s", out)
		}
		if strings.Contains(string(out), "lenient-pw-8") {
			t.Fatalf("password left:\n%s", out)
		}
	})
	for _, tc := range []struct{ name, src, want string }{
		{"credentials from a merge key", "version: \"2.0\"\nx-base: &base\n  image: ghcr.io/org/web:1\n  credentials: {host: ghcr.io, username: u, password: lenient-pw-9}\nservices:\n  web:\n    <<: *base\n",
			"services.web: its credentials come through a YAML merge key"},
		{"credentials aliasing an x- anchor", "version: \"2.0\"\nx-creds: &creds {host: ghcr.io, username: u, password: lenient-pw-10}\nservices:\n  web:\n    image: ghcr.io/org/web:1\n    credentials: *creds\n",
			"services.web: its password would stay in the rewritten SDL"},
		{"credentials merging an x- anchor", "version: \"2.0\"\nx-creds: &creds {host: ghcr.io, username: u, password: lenient-pw-11}\nservices:\n  web:\n    image: ghcr.io/org/web:1\n    credentials: {<<: *creds}\n",
			"services.web: its password would stay in the rewritten SDL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := mustParse(t, []byte(tc.src)).Rewrite(testHub)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q; output:\n%s", err, tc.want, out)
			}
			assertNoPassword(t, "error", err.Error())
			if strings.Contains(err.Error(), "lenient-pw") {
				t.Fatalf("error holds the password: %v", err)
			}
		})
	}
}
