package sdl

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const testHub = "hub.example.com:5443"

func mustParse(t testing.TB, src []byte) *Document {
	t.Helper()
	doc, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestRewriteKeepsTheRest: the text is edited in place, so everything but
// the private images and their credentials blocks stays byte for byte.
func TestRewriteKeepsTheRest(t *testing.T) {
	src := readFixture(t, "dockerhub.yaml")
	got, _, err := mustParse(t, src).Rewrite("https://" + testHub + "/")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(src), "image: docker.io/mycompany/private-app:v1.0", "image: "+testHub+"/docker.io/mycompany/private-app:v1.0", 1)
	want = strings.Replace(want, "    credentials:\n      host: https://index.docker.io/v1/\n      username: myusername\n      password: dckr_pat_abc123xyz\n", "", 1)
	if string(got) != want {
		t.Fatalf("rewritten:\n%s\nwant:\n%s", got, want)
	}

	got, _, err = mustParse(t, readFixture(t, "multi.yaml")).Rewrite(testHub)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(readFixture(t, "multi.rewritten.yaml")); string(got) != want {
		t.Fatalf("multi rewritten:\n%s\nwant:\n%s", got, want)
	}
	// The rewritten SDL is itself a valid SDL, all public now.
	doc := mustParse(t, got)
	if len(doc.Private()) != 0 || len(doc.Services) != 5 {
		t.Fatalf("rewritten doc: %d services, %d private", len(doc.Services), len(doc.Private()))
	}
	assertNoPassword(t, "rewritten SDL", string(got))
}

func TestRewriteAllFixtures(t *testing.T) {
	for _, f := range []string{"dockerhub.yaml", "ghcr.yaml", "gcr.yaml", "ecr.yaml", "multi.yaml"} {
		doc := mustParse(t, readFixture(t, f))
		out, _, err := doc.Rewrite(testHub)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		re := mustParse(t, out)
		for i, s := range re.Services {
			orig := doc.Services[i]
			want := orig.Image
			if orig.Credentials != nil {
				want = HubImage(testHub, orig)
			}
			if s.Image != want || s.Credentials != nil {
				t.Errorf("%s: service %s image %q, want %q", f, s.Name, s.Image, want)
			}
		}
		assertNoPassword(t, f+" rewritten", string(out))
		if strings.Contains(string(out), "credentials:") || strings.Contains(string(out), "private_key") {
			t.Errorf("%s: credentials left:\n%s", f, out)
		}
	}
}

func TestRewriteOtherLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		inPlace   bool // text edited in place rather than re-encoded
	}{
		{"single quoted, crlf", "version: '2.0'\r\nservices:\r\n  a:\r\n    image: 'ghcr.io/x/a:1'\r\n    credentials:\r\n      host: ghcr.io\r\n      username: u\r\n      password: BADsecretCRLF\r\n    expose: []\r\n", true},
		{"credentials first, blank lines", "version: \"2.0\"\nservices:\n  a:\n    credentials:\n      host: ghcr.io\n\n      username: u\n      password: |\n        BADsecretBLOCK\n        second line\n\n    image: ghcr.io/x/a:1\n", true},
		{"shared anchor", "version: \"2.0\"\nservices:\n  a:\n    image: ghcr.io/x/a:1\n    credentials: &c\n      host: ghcr.io\n      username: u\n      password: BADsecretANCHOR\n  b:\n    image: ghcr.io/x/b:1\n    credentials: *c\n", true},
		{"json syntax", `{"version": "2.0", "services": {"a": {"image": "ghcr.io/x/a:1", "credentials": {"host": "ghcr.io", "username": "u", "password": "BADsecretJSONSDL"}}, "b": {"image": "nginx"}}}`, false},
		{"flow service", "version: \"2.0\"\nservices:\n  a: {image: ghcr.io/x/a:1, credentials: {host: ghcr.io, username: u, password: BADsecretFLOW}}\n  b:\n    image: nginx # public\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustParse(t, []byte(tc.src))
			out, _, err := doc.Rewrite(testHub)
			if err != nil {
				t.Fatal(err)
			}
			assertNoPassword(t, "rewritten", string(out))
			re := mustParse(t, out)
			for _, s := range re.Services {
				if s.Credentials != nil || (s.Name == "a" && s.Image != testHub+"/ghcr.io/x/a:1") || (s.Name == "b" && s.Image != "nginx" && s.Image != testHub+"/ghcr.io/x/b:1") {
					t.Errorf("service %s: %q", s.Name, s.Image)
				}
			}
			text, ok := textEdit(doc.src, doc.Private(), nil, testHub)
			var n yaml.Node
			inPlace := ok && yaml.Unmarshal(text, &n) == nil && string(text) == string(out)
			if inPlace != tc.inPlace {
				t.Errorf("edited in place: %v, want %v\n%s", inPlace, tc.inPlace, out)
			}
		})
	}
}

func TestRewriteRefusesWhatItCannotDoSafely(t *testing.T) {
	// A public service aliases part of a credentials block.
	src := "version: \"2.0\"\nservices:\n  a:\n    image: ghcr.io/x/a:1\n    credentials: &c\n      host: ghcr.io\n      username: u\n      password: BADsecretALIAS\n  b:\n    image: nginx\n    env: *c\n"
	_, _, err := mustParse(t, []byte(src)).Rewrite(testHub)
	if err == nil || !strings.Contains(err.Error(), "cannot be rewritten safely") {
		t.Fatalf("err %v", err)
	}
	for _, h := range []string{"", "hub/path", "user:pw@hub", "https://hub/x", "HUB WITH SPACE", "hub:99999"} {
		if _, _, err := mustParse(t, readFixture(t, "ghcr.yaml")).Rewrite(h); err == nil || strings.Contains(err.Error(), "pw@") {
			t.Errorf("hub host %q: %v", h, err)
		}
	}
}

func TestRewriteManifest(t *testing.T) {
	doc := mustParse(t, readFixture(t, "manifest.json"))
	out, _, err := doc.Rewrite(testHub)
	if err != nil {
		t.Fatal(err)
	}
	assertNoPassword(t, "rewritten manifest", string(out))
	re := mustParse(t, out)
	want := []string{testHub + "/ghcr.io/acme/web:2.3.1", "redis:7-alpine", testHub + "/docker.io/acme/worker:1"}
	for i, s := range re.Services {
		if s.Image != want[i] || s.Credentials != nil {
			t.Errorf("service %s: %q", s.Name, s.Image)
		}
	}
	// Other fields are kept, numbers as written.
	if !strings.Contains(string(out), `"val": "536870912"`) || !strings.Contains(string(out), `"externalPort": 80`) {
		t.Errorf("fields lost:\n%s", out)
	}
}

// encoding/json reads keys case-insensitively, as the provider does: a
// "Credentials" or "IMAGE" spelling must not survive the rewrite, and
// spellings that make the document ambiguous are refused.
func TestRewriteManifestCaseFoldedKeys(t *testing.T) {
	const pw = "case-folded-secret-pw"
	doc := mustParse(t, []byte(`[{"name":"g","Services":[{"Name":"web","IMAGE":"ghcr.io/acme/web:1",`+
		`"CredentiAls":{"host":"ghcr.io","username":"u","password":"`+pw+`"}}]}]`))
	out, _, err := doc.Rewrite(testHub)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), pw) || strings.Contains(strings.ToLower(string(out)), "credentials") {
		t.Fatalf("credentials survived the rewrite:\n%s", out)
	}
	re := mustParse(t, out)
	if len(re.Services) != 1 || re.Services[0].Image != testHub+"/ghcr.io/acme/web:1" {
		t.Fatalf("rewritten services: %+v", re.Services)
	}

	amb := mustParse(t, []byte(`[{"name":"g","Services":[],"services":[{"name":"web","image":"ghcr.io/acme/web:1",`+
		`"credentials":{"host":"ghcr.io","username":"u","password":"`+pw+`"}}]}]`))
	if _, _, err := amb.Rewrite(testHub); err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("ambiguous services keys: %v", err)
	}
}
