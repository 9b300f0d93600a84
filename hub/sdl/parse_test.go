package sdl

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixturePasswords are every password in the fixtures, for leak checks.
var fixturePasswords = []string{
	"dckr_pat_abc123xyz", "ghp_abc123def456", "eyJwYXlsb2FkIjoiQUJDREVGIiwiZGF0YWtleSI6IlhZWiIsInZlcnNpb24iOiIyIn0=",
	"MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA", "ghp_MULTIsecretWEB0123456789", "dckr_pat_MULTIsecretAPI",
	"ghp_MANIFESTsecret0123", "dckr_pat_MANIFESTsecret", "BADsecret",
}

func assertNoPassword(t testing.TB, what, s string) {
	t.Helper()
	for _, pw := range fixturePasswords {
		if strings.Contains(s, pw) {
			t.Errorf("%s contains a password (%.6s...): %s", what, pw, s)
		}
	}
}

func TestParseSharedFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, host, user, repo, ref string
	}{
		{"dockerhub.yaml", "docker.io", "myusername", "docker.io/mycompany/private-app", "v1.0"},
		{"ghcr.yaml", "ghcr.io", "myusername", "ghcr.io/myorg/my-app", "v1.0"},
		{"gcr.yaml", "gcr.io", "_json_key", "gcr.io/my-project/my-app", "latest"},
		{"ecr.yaml", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS", "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo", "latest"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			doc, err := Parse(readFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if doc.Format != FormatSDL || doc.Version != "2.0" || len(doc.Services) != 1 {
				t.Fatalf("doc %+v", doc)
			}
			s := doc.Services[0]
			if s.Name != "app" || s.Credentials == nil || s.Credentials.Host != tc.host || s.Credentials.Username != tc.user ||
				s.Repo.String() != tc.repo || s.Ref != tc.ref || s.Credentials.Password == "" {
				t.Fatalf("service %+v creds %v", s, s.Credentials)
			}
			b, _ := json.Marshal(s.Credentials)
			for _, out := range []string{s.Credentials.String(), string(b)} {
				assertNoPassword(t, "formatted credentials", out)
			}
		})
	}
	// The gcr password is the multi-line JSON, kept as written.
	doc, _ := Parse(readFixture(t, "gcr.yaml"))
	if pw := doc.Services[0].Credentials.Password; !strings.Contains(pw, `"type": "service_account"`) || !strings.Contains(pw, "\n") {
		t.Errorf("gcr password not the JSON block")
	}
}

func TestParseMulti(t *testing.T) {
	doc, err := Parse(readFixture(t, "multi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range doc.Services {
		if s.Credentials == nil {
			got[s.Name] = "public " + s.Image
			continue
		}
		got[s.Name] = s.Credentials.Host + " " + s.Credentials.Username + " " + s.Repo.String() + " " + s.Ref
	}
	want := map[string]string{
		"web":    "ghcr.io acme-bot ghcr.io/acme/web 2.3.1",
		"api":    "docker.io acmebot docker.io/acme/api sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"worker": "docker.io acmebot docker.io/acme/worker latest",
		"redis":  "public redis:7-alpine",
		"cache":  "public ghcr.io/acme/public-cache:1",
	}
	if len(got) != len(want) {
		t.Fatalf("services %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if doc.Version != "2.1" || len(doc.Private()) != 3 {
		t.Errorf("version %s, %d private", doc.Version, len(doc.Private()))
	}
}

func TestParseManifest(t *testing.T) {
	doc, err := Parse(readFixture(t, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Format != FormatManifest || len(doc.Services) != 3 || len(doc.Private()) != 2 {
		t.Fatalf("manifest %+v", doc)
	}
	w := doc.Services[2]
	if w.Name != "worker" || w.Group != "eastcoast" || w.Credentials.Host != "docker.io" || w.Repo.String() != "docker.io/acme/worker" {
		t.Fatalf("worker %+v", w)
	}
}

func TestParseErrors(t *testing.T) {
	huge := "version: \"2.0\"\nservices:\n  app:\n    image: nginx\n#" + strings.Repeat("x", MaxBytes) + "\n"
	many := "version: \"2.0\"\nservices:\n"
	for i := range MaxServices + 1 {
		many += "  s" + strings.Repeat("x", i%3) + itoa(i) + ":\n    image: nginx\n"
	}
	for _, tc := range []struct {
		name, src string
		file      string
		want      []string
	}{
		{name: "missing password", file: "bad/missing-password.yaml", want: []string{"services.app.credentials.password (line 5): missing (Akash requires host, username and password)"}},
		{name: "missing fields", file: "bad/missing-fields.yaml", want: []string{
			"services.app.credentials.host (line 5): missing", "services.app.credentials.username (line 5): missing",
			"services.app.credentials.password (line 5): missing", "services.db.image (line 8): missing"}},
		{name: "wrong types", file: "bad/wrong-types.yaml", want: []string{
			"services.app.credentials (line 6): want a mapping with host, username and password, got a list",
			"services.api.image (line 8): want a string, got a list",
			"services.api.credentials.username (line 11): want a string, got a mapping",
			"services.web (line 13): want a mapping (image, expose, credentials, ...), got a string"}},
		{name: "unknown host forms", file: "bad/unknown-host.yaml", want: []string{
			`services.ftp.credentials.host (line 5): registry host "ftp://registry.corp"`,
			`services.path.credentials.host (line 11): registry host "https://registry.corp/some/path": unexpected path "/some/path"`,
			"services.userinfo.credentials.host (line 17): registry host must not contain user info",
			"services.mismatch.image (line 22): image \"ghcr.io/acme/app:1\" is on ghcr.io but credentials.host is docker.io",
			"services.badimage.image (line 28)"}},
		{name: "bad version", file: "bad/bad-version.yaml", want: []string{`version (line 1): "3.0": pullgate reads SDL versions 2.0, 2.1 and 2.2`}},
		{name: "duplicate keys", file: "bad/duplicate-key.yaml", want: []string{
			"services.app.credentials.password (line 9): defined twice (first at line 8)", "services.app (line 10): defined twice (first at line 3)"}},
		{name: "not yaml", file: "bad/not-yaml.yaml", want: []string{"not valid YAML: line"}},
		{name: "unknown fields", file: "bad/unknown-fields.yaml", want: []string{
			"servics (line 2): unexpected field", "services.app.credentials.user (line 10): unexpected field",
			"services.app.credentials.passwd (line 11): unexpected field", "services.app.credentials.username (line 8): missing"}},
		{name: "two documents", file: "bad/two-documents.yaml", want: []string{"more than one YAML document"}},
		{name: "empty", src: "  \n", want: []string{"document is empty"}},
		{name: "comment only", src: "# nothing\n", want: []string{"SDL is empty"}},
		{name: "scalar", src: "hello\n", want: []string{"top level: want a mapping"}},
		{name: "list", src: "- a\n", want: []string{"top level: want a mapping"}},
		{name: "no version", src: "services:\n  a:\n    image: nginx\n", want: []string{"version (line 1): missing"}},
		{name: "version number", src: "version: 2.0\nservices:\n  a:\n    image: nginx\n", want: nil},
		{name: "services list", src: "version: \"2.0\"\nservices: [a]\n", want: []string{"services (line 2): want a mapping of service names"}},
		{name: "no services", src: "version: \"2.0\"\nservices: {}\n", want: []string{"services (line 2): no services"}},
		{name: "unknown top-level key", src: "version: \"2.0\"\nbase: &b {image: x}\nservices:\n  a:\n    <<: *b\n", want: []string{"base (line 2): unexpected field"}},
		{name: "merge of a scalar", src: "version: \"2.0\"\nx-b: &b x\nservices:\n  a:\n    <<: *b\n    image: nginx\n", want: []string{"services.a (line 5): a merge key (<<) takes a mapping or a list of mappings, got a string"}},
		{name: "version 2.0.1", src: "version: \"2.0.1\"\nservices:\n  a:\n    image: nginx\n", want: []string{"pullgate reads SDL versions 2.0, 2.1 and 2.2"}},
		{name: "version 2.3", src: "version: \"2.3\"\nservices:\n  a:\n    image: nginx\n", want: []string{"pullgate reads SDL versions 2.0, 2.1 and 2.2"}},
		{name: "version junk", src: "version: \"2.x\"\nservices:\n  a:\n    image: nginx\n", want: []string{"pullgate reads SDL versions"}},
		{name: "credentials scalar", src: "version: \"2.0\"\nservices:\n  a:\n    image: x/y\n    credentials: BADsecretSCALAR\n", want: []string{"services.a.credentials (line 5): want a mapping"}},
		{name: "null credentials is public", src: "version: \"2.0\"\nservices:\n  a:\n    image: x/y\n    credentials:\n", want: nil},
		{name: "numeric password ok", src: "version: \"2.0\"\nservices:\n  a:\n    image: ghcr.io/x/y\n    credentials: {host: ghcr.io, username: u, password: 12345}\n", want: nil},
		{name: "huge", src: huge, want: []string{"bytes; the limit is 524288 (512 KiB)"}},
		{name: "too many services", src: many, want: []string{"257 services; at most 256"}},
		{name: "manifest not json", src: "[{\"name\": BADsecretJSON}]", want: []string{"manifest: not valid JSON (error at byte 11)"}},
		{name: "manifest object", src: "[\"x\"]", want: []string{"groups[0]: want a group object"}},
		{name: "manifest wrong type", src: `[{"name":"g","services":[{"name":"web","image":"ghcr.io/a/b","credentials":{"host":"ghcr.io","username":"u","password":42}}]}]`,
			want: []string{`group "g" service "web".credentials: password must be a string, got number`}},
		{name: "manifest missing password", src: `[{"name":"g","services":[{"name":"web","image":"ghcr.io/a/b","credentials":{"host":"ghcr.io","username":"u"}}]}]`,
			want: []string{`group "g" service "web".credentials.password: missing`}},
		{name: "manifest no services", src: `[{"name":"g","services":[]}]`, want: []string{`group "g": no services`}},
		{name: "manifest trailing", src: `[] x`, want: []string{"manifest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := []byte(tc.src)
			if tc.file != "" {
				src = readFixture(t, tc.file)
			}
			_, err := Parse(src)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("%T is not *sdl.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			assertNoPassword(t, "error", err.Error())
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}
