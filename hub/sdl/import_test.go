package sdl

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

type env struct {
	t      *testing.T
	st     *store.SQL
	dbPath string
	im     *Importer
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "hub.db")
	st, err := store.OpenSQLite(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sl, _ := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize))
	e := &env{t: t, st: st, dbPath: dbPath, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	e.im = &Importer{Store: st, Sealer: sl, Now: func() time.Time { return e.now }}
	if _, err := st.CreateWorkspace(context.Background(), "tenant"); err != nil {
		t.Fatal(err)
	}
	// Installs bind an existing cluster; the provider's is shared.
	if _, err := st.CreateCluster(context.Background(), store.Cluster{Name: "provider-1"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) run(src []byte, p Params) (*Report, error) {
	e.t.Helper()
	doc, err := Parse(src)
	if err != nil {
		return nil, err
	}
	if p.Workspace == "" {
		p.Workspace = "tenant"
	}
	if p.Cluster == "" {
		p.Cluster = "provider-1"
	}
	if p.Namespace == "" {
		p.Namespace = "lease-abc"
	}
	return e.im.Import(context.Background(), p, doc)
}

func (e *env) ok(src []byte, p Params) *Report {
	e.t.Helper()
	rep, err := e.run(src, p)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	assertNoPassword(e.t, "report", string(b))
	return rep
}

// snapshot is the workspace's whole state, sealed secrets included.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	cs, _ := e.st.ListCredentials(ctx, "tenant")
	for _, c := range cs {
		fmt.Fprintf(&b, "cred %s %s %s %s v%d %v\n", c.Name, c.Host, c.Kind, c.Username, c.Version, c.Enabled)
		for v := 1; v <= c.Version; v++ {
			sealed, _ := e.st.CredentialSecret(ctx, c.ID, v)
			fmt.Fprintf(&b, "  secret %d %x\n", v, sha256.Sum256(sealed))
		}
	}
	ins, _ := e.st.ListInstalls(ctx, "tenant")
	for _, in := range ins {
		fmt.Fprintf(&b, "install %s %s/%s %v gen %d %v\n", in.Name, in.Cluster, in.Namespace, in.Repos, in.Generation, in.Enabled)
	}
	return b.String()
}

func (e *env) secret(name string) credential.Secret {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.st.GetCredential(ctx, "tenant", name)
	if err != nil {
		e.t.Fatal(err)
	}
	sealed, _ := e.st.CredentialSecret(ctx, c.ID, c.Version)
	s, err := credential.Open(e.im.Sealer, c, sealed)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// gcrWithRealKey is the shared gcr fixture with a real RSA key.
func gcrWithRealKey(t testing.TB) []byte {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	esc := strings.ReplaceAll(string(p), "\n", `\n`)
	src := string(readFixture(t, "gcr.yaml"))
	old := `-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA\n-----END PRIVATE KEY-----\n`
	if !strings.Contains(src, old) {
		t.Fatal("gcr fixture changed")
	}
	return []byte(strings.Replace(src, old, esc, 1))
}

func TestImportSharedFixtures(t *testing.T) {
	for _, tc := range []struct {
		file       string
		src        func(testing.TB) []byte
		kind, auth string
		repo, pw   string
	}{
		{file: "dockerhub.yaml", kind: "basic", auth: "password", repo: "docker.io/mycompany/private-app", pw: "dckr_pat_abc123xyz"},
		{file: "ghcr.yaml", kind: "basic", auth: "password", repo: "ghcr.io/myorg/my-app", pw: "ghp_abc123def456"},
		{file: "ecr.yaml", kind: "ecr", auth: "ecr_token", repo: "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo",
			pw: "eyJwYXlsb2FkIjoiQUJDREVGIiwiZGF0YWtleSI6IlhZWiIsInZlcnNpb24iOiIyIn0="},
		{file: "gcr.yaml (real key)", src: gcrWithRealKey, kind: "gcp", auth: "json_key", repo: "gcr.io/my-project/my-app"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t)
			src := []byte(nil)
			if tc.src != nil {
				src = tc.src(t)
			} else {
				src = readFixture(t, tc.file)
			}
			rep := e.ok(src, Params{HubHost: testHub})
			if len(rep.Credentials) != 1 || rep.Install == nil {
				t.Fatalf("report %+v", rep)
			}
			cr, ir := rep.Credentials[0], rep.Install
			if cr.Action != Created || cr.Kind != tc.kind || cr.Version != 1 || !strings.HasPrefix(cr.Name, "sdl-") || cr.Services[0] != "app" {
				t.Fatalf("credential %+v", cr)
			}
			if ir.Action != Created || ir.Name != "sdl-app" || len(ir.Repos) != 1 || ir.Repos[0] != tc.repo || !ir.Enabled {
				t.Fatalf("install %+v", ir)
			}
			if rep.Services[0].HubImage != testHub+"/"+tc.repo+":"+rep.Services[0].Image[strings.LastIndex(rep.Services[0].Image, ":")+1:] {
				t.Errorf("hub image %q", rep.Services[0].HubImage)
			}
			in, err := e.st.GetInstall(context.Background(), "tenant", "sdl-app")
			if err != nil || in.Cluster != "provider-1" || in.Namespace != "lease-abc" || len(in.Repos) != 1 {
				t.Fatalf("stored install %+v %v", in, err)
			}
			if tc.pw != "" && e.secret(cr.Name).Password != tc.pw {
				t.Error("stored password differs")
			}
			if tc.kind == "ecr" {
				// The pasted token: expiry shown (12h, the token carries none) and warned about.
				if cr.ExpiresAt == nil || !cr.ExpiresAt.Equal(e.now.Add(12*time.Hour)) || len(cr.Warnings) != 1 {
					t.Errorf("ecr expiry %+v", cr)
				}
			}
			// Idempotent: the same document again changes nothing.
			before := e.snapshot()
			e.now = e.now.Add(time.Hour)
			rep = e.ok(src, Params{})
			if rep.Credentials[0].Action != Unchanged || rep.Install.Action != Unchanged || rep.Credentials[0].Version != 1 {
				t.Fatalf("second import %+v %+v", rep.Credentials[0], rep.Install)
			}
			if tc.kind == "ecr" && !rep.Credentials[0].ExpiresAt.Equal(e.now.Add(11*time.Hour)) {
				t.Errorf("unchanged ecr token lost its recorded expiry: %v", rep.Credentials[0].ExpiresAt)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("re-import changed state:\n%s\n%s", before, after)
			}
			assertNoLeakOnDisk(t, e.dbPath, tc.pw)
		})
	}
}

// The shared gcr fixture's key is a truncated placeholder: refused with
// the field named, nothing stored.
func TestImportRefusesBrokenServiceAccountKey(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	_, err := e.run(readFixture(t, "gcr.yaml"), Params{})
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "services.app.credentials (line 6): kind gcp: service-account JSON: private_key does not parse") {
		t.Fatalf("err %v", err)
	}
	assertNoPassword(t, "error", err.Error())
	if e.snapshot() != before {
		t.Fatal("state changed")
	}
}

func TestImportMultiAndUpdates(t *testing.T) {
	e := newEnv(t)
	src := readFixture(t, "multi.yaml")
	rep := e.ok(src, Params{})
	if len(rep.Credentials) != 2 {
		t.Fatalf("credentials %+v", rep.Credentials)
	}
	byHost := map[string]CredentialReport{}
	for _, c := range rep.Credentials {
		byHost[c.Host] = c
	}
	if c := byHost["docker.io"]; c.Username != "acmebot" || strings.Join(c.Services, ",") != "api,worker" || c.Action != Created {
		t.Errorf("docker.io credential %+v", c)
	}
	if c := byHost["ghcr.io"]; c.Username != "acme-bot" || strings.Join(c.Services, ",") != "web" {
		t.Errorf("ghcr.io credential %+v", c)
	}
	wantRepos := []string{"docker.io/acme/api", "docker.io/acme/worker", "ghcr.io/acme/web"}
	if rep.Install.Name != "sdl-api-cache-redis-web-worker" || strings.Join(rep.Install.Repos, " ") != strings.Join(wantRepos, " ") {
		t.Fatalf("install %+v", rep.Install)
	}
	for _, s := range rep.Services {
		if (s.Name == "redis" || s.Name == "cache") != !s.Private {
			t.Errorf("service %+v", s)
		}
	}

	// A new password is a new secret version of that credential only.
	src2 := bytes.Replace(src, []byte("ghp_MULTIsecretWEB0123456789"), []byte("ghp_MULTIsecretWEBrotated99"), 1)
	fixturePasswords = append(fixturePasswords, "ghp_MULTIsecretWEBrotated99")
	rep = e.ok(src2, Params{})
	for _, c := range rep.Credentials {
		want, v := Unchanged, 1
		if c.Host == "ghcr.io" {
			want, v = Updated, 2
		}
		if c.Action != want || c.Version != v {
			t.Errorf("after rotation %+v", c)
		}
	}
	if rep.Install.Action != Unchanged || rep.Install.Generation != 1 {
		t.Errorf("install changed by a password rotation: %+v", rep.Install)
	}
	if e.secret(byHost["ghcr.io"].Name).Password != "ghp_MULTIsecretWEBrotated99" {
		t.Error("new password not stored")
	}
	if _, ok := rep.ChangedInstall(); ok || !rep.CredentialsChanged() {
		t.Error("change flags")
	}

	// Dropping a private service narrows the allow-list (a new generation).
	src3 := bytes.Replace(src2, []byte("  worker:\n    image: acme/worker\n    credentials: {host: docker.io, username: acmebot, password: dckr_pat_MULTIsecretAPI}\n"), nil, 1)
	rep = e.ok(src3, Params{Install: "sdl-api-cache-redis-web-worker"})
	if rep.Install.Action != Updated || rep.Install.Generation != 2 || len(rep.Install.Repos) != 2 {
		t.Fatalf("narrowed install %+v", rep.Install)
	}
	if in, ok := rep.ChangedInstall(); !ok || in.Generation != 2 {
		t.Error("changed install not reported")
	}

	// Dry run: reported, not applied.
	before := e.snapshot()
	rep = e.ok(src, Params{Install: "sdl-api-cache-redis-web-worker", DryRun: true})
	if !rep.DryRun || rep.Install.Action != Updated || rep.Install.Generation != 3 {
		t.Fatalf("dry run %+v", rep.Install)
	}
	for _, c := range rep.Credentials {
		if c.Host == "ghcr.io" && (c.Action != Updated || c.Version != 3) {
			t.Errorf("dry run credential %+v", c)
		}
	}
	if e.snapshot() != before {
		t.Fatal("dry run changed state")
	}
	rep = e.ok(src, Params{DryRun: true, Install: "other"})
	if rep.Install.Action != Created {
		t.Errorf("dry-run create %+v", rep.Install)
	}
	if e.snapshot() != before {
		t.Fatal("dry run changed state")
	}
}

func TestImportManifest(t *testing.T) {
	e := newEnv(t)
	rep := e.ok(readFixture(t, "manifest.json"), Params{Install: "dseq-1234"})
	if rep.Format != FormatManifest || len(rep.Credentials) != 2 || rep.Install.Name != "dseq-1234" ||
		strings.Join(rep.Install.Repos, " ") != "docker.io/acme/worker ghcr.io/acme/web" {
		t.Fatalf("report %+v %+v", rep, rep.Install)
	}
	if rep.Services[2].Group != "eastcoast" || rep.Services[1].Private {
		t.Errorf("services %+v", rep.Services)
	}
}

func TestImportPublicOnly(t *testing.T) {
	e := newEnv(t)
	rep := e.ok([]byte("version: \"2.0\"\nservices:\n  web:\n    image: nginx\n"), Params{})
	if rep.Install != nil || len(rep.Credentials) != 0 || len(rep.Warnings) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if e.snapshot() != "" {
		t.Fatal("public-only SDL created state (an empty allow-list would allow everything)")
	}
}

// Every refused import changes nothing.
func TestImportRefusedChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sl := e.im.Sealer
	seed := func(name, host, user string) {
		c := store.Credential{WorkspaceID: "", Name: name, Host: host, Kind: "basic", Username: user, Enabled: true}
		ws, _ := e.st.GetWorkspace(ctx, "tenant")
		c.WorkspaceID = ws.ID
		sealed, _ := credential.Seal(sl, c, credential.Secret{Password: "operator-pw"})
		if _, err := e.st.CreateCredential(ctx, "tenant", c, sealed); err != nil {
			t.Fatal(err)
		}
	}
	e.ok(readFixture(t, "ghcr.yaml"), Params{Install: "existing", Namespace: "ns-1"})
	seed("corp-hub", "docker.io", "corpbot")
	seed("myorg", "ghcr.io/myorg/my-app", "scoped")
	seed(CredentialName("registry.corp", "bot"), "quay.io", "bot")
	second := bytes.Replace(readFixture(t, "ghcr.yaml"), []byte("ghp_abc123def456"), []byte("ghp_abc123def456-NEW"), 1)
	fixturePasswords = append(fixturePasswords, "ghp_abc123def456-NEW")
	twoPw := []byte("version: \"2.0\"\nservices:\n  a:\n    image: ghcr.io/x/a\n    credentials: {host: ghcr.io, username: u, password: BADsecretONE}\n  b:\n    image: ghcr.io/x/b\n    credentials: {host: ghcr.io, username: u, password: BADsecretTWO}\n")
	before := e.snapshot()
	for _, tc := range []struct {
		name string
		src  []byte
		p    Params
		want string
		conf bool
	}{
		{"equal prefix", readFixture(t, "dockerhub.yaml"), Params{}, `covered equally by registry credentials "corp-hub" (docker.io)`, true},
		{"more specific operator credential", second, Params{Install: "existing", Namespace: "ns-1"}, `would be pulled with registry credential "myorg" (ghcr.io/myorg/my-app)`, true},
		{"name taken by another host", []byte("version: \"2.0\"\nservices:\n  a:\n    image: registry.corp/x/a\n    credentials: {host: registry.corp, username: bot, password: BADsecretNAME}\n"), Params{}, "already exists for quay.io", true},
		{"install for another namespace", readFixture(t, "ecr.yaml"), Params{Install: "existing", Namespace: "ns-2"}, `install "existing" already exists for cluster "provider-1", namespace "ns-1"`, true},
		{"two passwords for one login", twoPw, Params{}, "services.b.credentials.password (line 8): differs from the password another service gives", false},
		{"bad install name", readFixture(t, "ecr.yaml"), Params{Install: "Bad Name"}, `install: "Bad Name"`, false},
		{"bad hub host", readFixture(t, "ecr.yaml"), Params{HubHost: "hub/x"}, "hub host", false},
		{"broken gcr key", readFixture(t, "gcr.yaml"), Params{}, "private_key does not parse", false},
		{"missing workspace", readFixture(t, "ecr.yaml"), Params{Workspace: "nope"}, `workspace "nope"`, false},
		// Finding 2 (SSRF): a tenant's credentials host must not name the
		// hub's own network.
		{"loopback host", ssrfSDL("127.0.0.1:25090"), Params{}, "services.web.credentials.host (line 5): registry host 127.0.0.1:25090 is an IP address", false},
		{"private host", ssrfSDL("10.0.0.5:5000"), Params{}, "services.web.credentials.host (line 5): registry host 10.0.0.5:5000 is an IP address", false},
		{"metadata host", ssrfSDL("169.254.169.254"), Params{}, "registry host 169.254.169.254 is an IP address", false},
		{"ipv6 loopback", ssrfSDL("[::1]:5000"), Params{}, "registry host [::1]:5000 is an IP address", false},
		{"localhost", ssrfSDL("localhost:5000"), Params{}, "services.web.credentials.host (line 5): registry host localhost:5000 is a local name", false},
		{"dot localhost", ssrfSDL("registry.localhost"), Params{}, "registry host registry.localhost is a local name", false},
		{"single label", ssrfSDL("registry:5000"), Params{}, "registry host registry:5000 is a single-label name", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.run(tc.src, tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			var ce *ConflictError
			if errors.As(err, &ce) != tc.conf {
				t.Errorf("conflict %v, want %v (%T)", !tc.conf, tc.conf, err)
			}
			assertNoPassword(t, "error", err.Error())
			if strings.Contains(err.Error(), "operator-pw") {
				t.Error("error carries a stored password")
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ host, user string }{
		{"docker.io", "myusername"}, {"docker.io", "MyUserName"}, {"123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS"},
		{"gcr.io", "_json_key"}, {"registry.corp:5000", "ci@corp.example"}, {strings.Repeat("a", 60) + ".example", strings.Repeat("u", 200)},
		{"ghcr.io", "---"},
	} {
		n := CredentialName(tc.host, tc.user)
		if !store.ValidName(n) || n != CredentialName(tc.host, tc.user) {
			t.Errorf("CredentialName(%q, %q) = %q", tc.host, tc.user, n)
		}
	}
	if CredentialName("docker.io", "myuser") == CredentialName("docker.io", "MyUser") {
		t.Error("usernames differing in case share a credential")
	}
	for _, names := range [][]string{{"app"}, {"web", "api"}, {"Web_Front", "API"}, {strings.Repeat("service", 20), "b"}} {
		doc := &Document{}
		for _, n := range names {
			doc.Services = append(doc.Services, &Service{Name: n})
		}
		if n := DefaultInstallName(doc); !store.ValidName(n) {
			t.Errorf("DefaultInstallName(%v) = %q", names, n)
		}
	}
}

func assertNoLeakOnDisk(t *testing.T, dbPath, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	files, _ := filepath.Glob(dbPath + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the password in plaintext", f)
		}
	}
}

// ssrfSDL is the review's finding 2 reproduction: a service whose image and
// credentials point at host.
func ssrfSDL(host string) []byte {
	return []byte("version: \"2.0\"\nservices:\n  web:\n    image: \"" + host + "/internal/secret-app:latest\"\n    credentials: {host: \"" + host + "\", username: anything, password: BADsecretSSRF}\n")
}

// Two deployments pulling as the same user of the same host share one
// credential: the second import's password replaces the first's, and the
// report says so; credential scope repository keeps them apart.
func TestImportSameUserTwoDeployments(t *testing.T) {
	sdlFor := func(repo, pw string) []byte {
		return []byte("version: \"2.0\"\nservices:\n  app:\n    image: ghcr.io/acme/" + repo + ":1\n    credentials: {host: ghcr.io, username: bot, password: " + pw + "}\n")
	}
	password := func(e *env, name string) string {
		t.Helper()
		c, err := e.st.GetCredential(context.Background(), "tenant", name)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := e.st.CredentialSecret(context.Background(), c.ID, c.Version)
		s, err := credential.Open(e.im.Sealer, c, sealed)
		if err != nil {
			t.Fatal(err)
		}
		return s.Password
	}

	t.Run("host scope: replaced, and said so", func(t *testing.T) {
		e := newEnv(t)
		e.ok(sdlFor("a", "first-PASSWORD-a"), Params{Install: "dep-a", Namespace: "lease-a"})
		dry := e.ok(sdlFor("b", "second-PASSWORD-b"), Params{Install: "dep-b", Namespace: "lease-b", DryRun: true})
		if c := dry.Credentials[0]; c.Action != Updated || len(c.SharedWith) != 1 || c.SharedWith[0] != "dep-a" ||
			len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "would replace the password of ghcr.io user bot for installs dep-a") {
			t.Fatalf("dry run report %+v", c)
		}
		rep := e.ok(sdlFor("b", "second-PASSWORD-b"), Params{Install: "dep-b", Namespace: "lease-b"})
		c := rep.Credentials[0]
		if c.Action != Updated || !strings.Contains(strings.Join(c.Warnings, " "), "replaced the password of ghcr.io user bot for installs dep-a too") ||
			!strings.Contains(c.Warnings[0], "--credential-scope repository") {
			t.Fatalf("report %+v", c)
		}
		if got := password(e, c.Name); got != "second-PASSWORD-b" {
			t.Fatal("password not replaced (the behaviour the warning describes)")
		}
		// Re-importing the first deployment's own SDL: it is the one
		// changing a password others use now.
		again := e.ok(sdlFor("a", "first-PASSWORD-a"), Params{Install: "dep-a", Namespace: "lease-a"})
		if c := again.Credentials[0]; len(c.SharedWith) != 1 || c.SharedWith[0] != "dep-b" {
			t.Fatalf("re-import report %+v", c)
		}
		// An unchanged password is no news.
		same := e.ok(sdlFor("a", "first-PASSWORD-a"), Params{Install: "dep-a", Namespace: "lease-a"})
		if c := same.Credentials[0]; c.Action != Unchanged || len(c.Warnings) != 0 {
			t.Fatalf("unchanged re-import %+v", c)
		}
	})

	t.Run("repository scope keeps them apart", func(t *testing.T) {
		e := newEnv(t)
		first := e.ok(sdlFor("a", "first-PASSWORD-a"), Params{Install: "dep-a", Namespace: "lease-a"})
		rep := e.ok(sdlFor("b", "second-PASSWORD-b"), Params{Install: "dep-b", Namespace: "lease-b", CredentialScope: ScopeRepository})
		c := rep.Credentials[0]
		if c.Action != Created || c.Host != "ghcr.io/acme/b" || c.Name == first.Credentials[0].Name || len(c.Warnings) != 0 {
			t.Fatalf("report %+v", c)
		}
		if password(e, first.Credentials[0].Name) != "first-PASSWORD-a" || password(e, c.Name) != "second-PASSWORD-b" {
			t.Fatal("passwords not kept apart")
		}
		// The proxy's pick: each repository its deployment's credential.
		creds, _ := e.st.ListCredentials(context.Background(), "tenant")
		for repo, want := range map[string]string{"a": first.Credentials[0].Name, "b": c.Name} {
			r, _, _ := imageref.ParseImage("ghcr.io/acme/" + repo + ":1")
			if got, _ := credential.Pick(creds, r); got.Name != want {
				t.Errorf("ghcr.io/acme/%s picks %s, want %s", repo, got.Name, want)
			}
		}
		// Importing the same SDL again with the same scope changes nothing.
		if again := e.ok(sdlFor("b", "second-PASSWORD-b"), Params{Install: "dep-b", Namespace: "lease-b", CredentialScope: ScopeRepository}); again.Credentials[0].Action != Unchanged {
			t.Fatalf("re-import %+v", again.Credentials[0])
		}
	})

	t.Run("unknown scope", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.run(sdlFor("a", "first-PASSWORD-a"), Params{CredentialScope: "cluster"}); err == nil || !strings.Contains(err.Error(), `credential_scope: "cluster": want host or repository`) {
			t.Fatalf("err %v", err)
		}
	})
}
