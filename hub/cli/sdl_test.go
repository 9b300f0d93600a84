package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/credential"
)

func TestSDLImportCLI(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	h.ok("", "workspace", "create", "tenant")
	h.ok("", "cluster", "create", "provider-1")
	dir := t.TempDir()
	multi := filepath.Join("..", "sdl", "testdata", "multi.yaml")
	out := filepath.Join(dir, "deploy.hub.yaml")

	// Dry run first: reported, nothing stored.
	o := h.ok("", "sdl", "import", multi, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-1", "--dry-run")
	if !strings.Contains(o, "dry run: nothing was changed") || !strings.Contains(o, "created") {
		t.Fatalf("dry run:\n%s", o)
	}
	if cs, _ := h.st.ListCredentials(ctx, "tenant"); len(cs) != 0 {
		t.Fatal("dry run stored credentials")
	}

	o = h.ok("", "sdl", "import", multi, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-1",
		"--rewrite", out, "--hub-host", "hub.example.com")
	for _, want := range []string{"sdl-ghcr.io-acme-bot-", "install \"sdl-api-cache-redis-web-worker\" created", "docker.io/acme/worker",
		"hub.example.com/ghcr.io/acme/web:2.3.1", "rewritten SDL written to " + out} {
		if !strings.Contains(o, want) {
			t.Errorf("import output lacks %q:\n%s", want, o)
		}
	}
	rewritten, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rewritten), "credentials:") || !strings.Contains(string(rewritten), "image: hub.example.com/docker.io/acme/worker:latest") ||
		!strings.Contains(string(rewritten), "# The web front end, from GitHub's registry.") {
		t.Fatalf("rewritten:\n%s", rewritten)
	}
	c, err := h.st.GetCredential(ctx, "tenant", "sdl-ghcr.io-acme-bot-026523")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := h.st.CredentialSecret(ctx, c.ID, c.Version)
	if s, err := credential.Open(h.sealer, c, sealed); err != nil || s.Password != "ghp_MULTIsecretWEB0123456789" {
		t.Fatal("stored password wrong")
	}

	// Again, as JSON, from stdin: unchanged.
	src, _ := os.ReadFile(multi)
	var res api.SDLImport
	if err := json.Unmarshal([]byte(h.ok(string(src), "-o", "json", "sdl", "import", "-", "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-1")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Install == nil || res.Install.Action != "unchanged" || res.Credentials[0].Action != "unchanged" {
		t.Fatalf("re-import %+v", res)
	}
	// The rewritten SDL to stdout; the report goes to stderr.
	code, stdout, stderr := h.run("", "sdl", "import", multi, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-1", "--rewrite", "-", "--hub-host", "hub.example.com")
	if code != 0 || !strings.HasPrefix(stdout, "# A deployment") || !strings.Contains(stderr, "unchanged") {
		t.Fatalf("rewrite to stdout: %d\n%s\n%s", code, stdout, stderr)
	}

	// The manifest form, detected from the content.
	man := filepath.Join("..", "sdl", "testdata", "manifest.json")
	o = h.ok("", "sdl", "import", man, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-2", "--install", "dseq-7")
	if !strings.Contains(o, "westcoast/web") || !strings.Contains(o, `install "dseq-7" created`) {
		t.Errorf("manifest import:\n%s", o)
	}
	// A pasted ECR token is warned about.
	code, _, stderr = h.run("", "sdl", "import", filepath.Join("..", "sdl", "testdata", "ecr.yaml"), "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-3")
	if code != 0 || !strings.Contains(stderr, "the pasted ECR token expires at") {
		t.Errorf("ecr import: %d %s", code, stderr)
	}

	// Refused: clear errors, exit codes, nothing changed.
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, []byte(" \n\n"), 0o644)
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte(strings.Repeat("#", 600<<10)), 0o644)
	before, _ := h.st.ListCredentials(ctx, "tenant")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sdl", "import", filepath.Join("..", "sdl", "testdata", "bad", "missing-password.yaml"), "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1,
			"400 Bad Request: invalid services.app.credentials.password (line 5): missing"},
		{[]string{"sdl", "import", filepath.Join("..", "sdl", "testdata", "gcr.yaml"), "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1, "private_key does not parse"},
		{[]string{"sdl", "import", multi, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1, "409 Conflict: install \"sdl-api-cache-redis-web-worker\" already exists"},
		{[]string{"sdl", "import", big, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1, "larger than 524288 bytes"},
		{[]string{"sdl", "import", filepath.Join(dir, "nope.yaml"), "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1, "no such file"},
		{[]string{"sdl", "import", multi, "-w", "tenant", "--namespace", "lease-9"}, 2, "--cluster"},
		{[]string{"sdl", "import", "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 2, "FILE"},
		{[]string{"sdl", "import", out, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9", "--rewrite", out}, 2, "would overwrite the SDL"},
		{[]string{"sdl", "import", empty, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9"}, 1, empty + " is empty: give an Akash SDL (YAML) or a provider manifest"},
		{[]string{"sdl", "import", multi, "-w", "tenant", "--cluster", "provider-1", "--namespace", "lease-9", "--credential-scope", "cluster"}, 2, `--credential-scope "cluster": want host or repository`},
	} {
		code, _, stderr := h.run("", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args[2:3], code, stderr, tc.code, tc.want)
		}
	}
	after, _ := h.st.ListCredentials(ctx, "tenant")
	if len(after) != len(before) {
		t.Error("a refused import stored credentials")
	}
	for _, o := range h.outputs {
		for _, pw := range []string{"ghp_MULTIsecretWEB0123456789", "dckr_pat_MULTIsecretAPI", "ghp_MANIFESTsecret0123", "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA", "dckr_pat_abc123xyz"} {
			if strings.Contains(o, pw) {
				t.Fatalf("password in CLI output: %s", o)
			}
		}
	}
}

func TestSDLHelp(t *testing.T) {
	h := newHub(t)
	out := h.ok("", "sdl", "import", "--help")
	for _, want := range []string{"Example", "--rewrite", "--dry-run", "--hub-host", "--credential-scope", "x- extension keys", "pullgate-hub sdl import deploy.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}
