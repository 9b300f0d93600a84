package sdl

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Fuzz targets for tenant documents: an Akash SDL (YAML) or a provider
// manifest (JSON), parsed on import and rewritten to pull through the hub.
// The rewrite must never leave a registry password behind.

const fuzzHub = "hub.example.com"

func addFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzParse covers both formats through Parse, the entry point of
// `sdl import` and the API.
func FuzzParse(f *testing.F) {
	addFiles(f, "testdata/*.yaml", "testdata/*.json", "testdata/bad/*.yaml")
	for _, s := range []string{
		"version: \"2.0\"\nservices:\n  web:\n    image: ghcr.io/org/app:v1\n    credentials: &c {host: ghcr.io, username: u, password: hunter2hunter2}\n  db:\n    image: ghcr.io/org/db:v1\n    credentials: *c\n",
		"version: \"2.0\"\nservices: {web: {image: ghcr.io/org/app, credentials: {host: ghcr.io, username: u, password: \"s3cr\\x65tpass\"}, env: [\"P=s3cretpass\"]}}\n",
		`[{"name":"g","services":[{"name":"web","image":"ghcr.io/org/app:v1","credentials":{"host":"ghcr.io","username":"u","password":"hunter2hunter2"}}]}]`,
		`[{"name":"g","services":[{"name":"web","image":"localhost:5000/app","credentials":{"host":"localhost:5000","username":"u","password":"pw-pw-pw-pw"}}]}] trailing`,
		"[]", "{}", "version: \"2.0\"\n", "---\n---\n",
		"version: \"2.2\"\nx-base: &b {image: ghcr.io/org/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}\nservices:\n  web:\n    <<: *b\n    credentials: {host: ghcr.io, username: u, password: hunter2hunter2, x-note: n}\n",
		"version: v2.1\nx-c: &c {host: ghcr.io, username: u, password: hunter2hunter2}\nservices:\n  web:\n    image: ghcr.io/org/app:v1\n    credentials: {<<: *c}\n  db:\n    image: registry.corp:5000/db:1\n    credentials: {host: \"registry.corp:5000\", username: u, password: pw-pw-pw-pw}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDocument(t, data, Parse) })
}

// FuzzParseManifest aims at the provider-manifest (JSON) parser directly.
func FuzzParseManifest(f *testing.F) {
	addFiles(f, "testdata/*.json")
	for _, s := range []string{
		`[{"name":"g","services":[{"name":"web","image":"ghcr.io/org/app:v1","credentials":{"host":"ghcr.io","username":"u","password":"hunter2hunter2"}}]}]`,
		`[{"name":"g","services":[{"name":"a","image":"nginx"},{"name":"b","image":"docker.io/org/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","credentials":{"host":"https://index.docker.io/v1/","email":"e","username":"u","password":"p4ssw0rd!!"},"count":1e400}]}]`,
		`[{"name":"g","services":[{"name":"web","image":"ghcr.io/org/app","credentials":{"host":"ghcr.io","username":"u","password":"pw-pw-pw-pw","password":"other-pw-pw"}}]}]`,
		`[{"services":null}]`, `[null]`, `[1]`, `[{"name":"g","services":[{"credentials":{}}]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDocument(t, data, ParseManifest) })
}

// checkDocument parses data and, when it parses, rewrites it and checks the
// result.
func checkDocument(t *testing.T, data []byte, parse func([]byte) (*Document, error)) {
	if len(data) > MaxBytes+1 {
		return
	}
	passwords := passwordsIn(data)
	doc, err := parse(data)
	if err != nil {
		noSecrets(t, "parse error", err.Error(), passwords)
		return
	}
	for _, s := range doc.Private() {
		if s.Credentials.Password == "" || s.Ref == "" {
			t.Fatalf("private service %q without password or reference", s.Name)
		}
		passwords[s.Credentials.Password] = true
		noSecrets(t, "String", s.Credentials.String(), passwords)
		checkRepo(t, s)
	}
	out, warnings, err := doc.Rewrite(fuzzHub)
	if err != nil {
		noSecrets(t, "rewrite error", err.Error(), passwords)
		return
	}
	for _, w := range warnings {
		noSecrets(t, "rewrite warning", w, passwords)
	}
	// Images the hub cannot name in path-prefix form stay as they are, one
	// warning each; their credentials go all the same.
	keep, _ := doc.keptImages(fuzzHub)
	if len(warnings) != len(keep) {
		t.Fatalf("%d warnings for %d images left alone", len(warnings), len(keep))
	}
	doc2, err := Parse(out)
	if err != nil {
		t.Fatalf("rewritten document does not parse: %v\n%s", err, out)
	}
	if len(doc2.Private()) != 0 {
		t.Fatalf("rewritten document still has credentials:\n%s", out)
	}
	if len(doc2.Services) != len(doc.Services) {
		t.Fatalf("rewrite changed the number of services: %d, then %d", len(doc.Services), len(doc2.Services))
	}
	for i, s := range doc.Services {
		if s.Credentials == nil {
			continue
		}
		want := HubImage(fuzzHub, s)
		if keep[s] {
			want = s.Image
		}
		if got := doc2.Services[i].Image; got != want {
			t.Fatalf("service %q: image %q, want %q", s.Name, got, want)
		}
	}
	// A password may legitimately stay where the tenant also wrote it
	// outside a credentials block; never more often than that.
	for pw := range passwords {
		if len(pw) < 4 {
			continue
		}
		before, after := occurrences(data, pw), occurrences(out, pw)
		inCreds := 0
		for _, s := range doc.Private() {
			if s.Credentials.Password == pw {
				inCreds++
			}
		}
		if after > 0 && after > before-inCreds {
			t.Fatalf("password %q: %d occurrences after the rewrite, %d before of which %d in credentials:\n%s", pw, after, before, inCreds, out)
		}
	}
	again, _, err := doc2.Rewrite(fuzzHub)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("rewrite not idempotent (%v):\n%s\n---\n%s", err, out, again)
	}
}

func checkRepo(t *testing.T, s *Service) {
	t.Helper()
	if s.Repo.Host == "" || s.Repo.Path == "" || strings.Contains(s.Repo.Path, "..") {
		t.Fatalf("service %q: repository %+v", s.Name, s.Repo)
	}
}

// occurrences counts the scalar values (at any depth, aliases expanded)
// equal to pw in a YAML or JSON document, and its raw occurrences when the
// document does not decode.
func occurrences(doc []byte, pw string) int {
	var v any
	if yaml.Unmarshal(doc, &v) != nil {
		return bytes.Count(doc, []byte(pw))
	}
	n := 0
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if strings.Contains(k, pw) {
					n++
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			n += strings.Count(x, pw)
		}
	}
	walk(v)
	return n
}

// passwordsIn finds every "password" value of a document that decodes,
// whether or not pullgate accepts it.
func passwordsIn(doc []byte) map[string]bool {
	out := map[string]bool{}
	var v any
	if yaml.Unmarshal(doc, &v) != nil {
		return out
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && strings.EqualFold(k, "password") && len(s) >= 8 {
					out[s] = true
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func noSecrets(t *testing.T, what, msg string, passwords map[string]bool) {
	t.Helper()
	for pw := range passwords {
		if len(pw) >= 8 && strings.Contains(msg, pw) {
			t.Fatalf("%s carries password %q: %s", what, pw, msg)
		}
	}
}

// FuzzCheckHubHost: the hub host goes in front of every rewritten image.
func FuzzCheckHubHost(f *testing.F) {
	for _, s := range []string{"hub.example.com", "https://hub.example.com/", "hub:8443", "u:p@hub", "hub/x", "HUB.example.com", "[::1]:443", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := CheckHubHost(s)
		if err != nil {
			// The user info (before the last '@'), not the whole input: the
			// fixed text itself contains "'@'".
			if i := strings.LastIndex(s, "@"); i >= 4 && strings.Contains(err.Error(), s[:i]) {
				t.Fatalf("error echoes user info: %v", err)
			}
			return
		}
		if h2, err := CheckHubHost(h); err != nil || h2 != h {
			t.Fatalf("CheckHubHost(%q) = %q, then %q %v", s, h, h2, err)
		}
		if strings.ContainsAny(h, "/@?# \t\r\n") || h != strings.ToLower(h) {
			t.Fatalf("CheckHubHost(%q) = %q", s, h)
		}
	})
}
