package testupstream

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func get(t *testing.T, rawURL string, mod func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// pullAndCheck pulls ref with auth and checks it matches want, reading
// every blob.
func pullAndCheck(t *testing.T, ref string, auth authn.Authenticator, want v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r, remote.WithAuth(auth), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	readAllLayers(t, got)
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Fatalf("pulled digest %s, pushed %s", gd, wd)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Fatalf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
}

// readAllLayers downloads every layer of img; remote layers verify their
// digest as they are read.
func readAllLayers(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
	}
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Fatalf("got error %v, want HTTP %d", err, status)
	}
}

func TestInProcessPushPull(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"noauth", nil},
		{"basic", []Option{WithBasicAuth("alice", "s3cret")}},
		{"token", []Option{WithTokenAuth("alice", "s3cret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := StartInProcess(t, tc.opts...)
			img := r.PushRandomImage(t, "team/app", "v1", 2, 1024)
			pullAndCheck(t, r.Ref("team/app", "v1"), r.Auth(), img)

			if r.Requests() == 0 || len(r.Log()) != r.Requests() {
				t.Fatalf("Requests()=%d, len(Log())=%d", r.Requests(), len(r.Log()))
			}
			if tc.name == "token" && r.TokenRequests() == 0 {
				t.Fatal("token mode: no token requests recorded")
			}
			if tc.name != "token" && r.TokenRequests() != 0 {
				t.Fatalf("TokenRequests()=%d without token auth", r.TokenRequests())
			}
			r.ResetLog()
			if r.Requests() != 0 || r.TokenRequests() != 0 {
				t.Fatal("ResetLog did not clear counters")
			}
		})
	}
}

func TestInProcessWrongPasswordRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"basic", WithBasicAuth("alice", "s3cret")},
		{"token", WithTokenAuth("alice", "s3cret")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := StartInProcess(t, tc.opt)
			r.PushRandomImage(t, "app", "v1", 1, 256)
			ref, _ := name.ParseReference(r.Ref("app", "v1"))
			bad := &authn.Basic{Username: "alice", Password: "wrong"}
			_, err := remote.Image(ref, remote.WithAuth(bad), remote.WithContext(t.Context()))
			wantStatus(t, err, http.StatusUnauthorized)
			_, err = remote.Image(ref, remote.WithContext(t.Context()))
			wantStatus(t, err, http.StatusUnauthorized)
		})
	}
}

func TestBasicChallenge(t *testing.T) {
	r := StartInProcess(t, WithBasicAuth("alice", "s3cret"))
	resp := get(t, r.URL+"/v2/", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="testupstream"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	resp = get(t, r.URL+"/v2/", func(req *http.Request) { req.SetBasicAuth("alice", "s3cret") })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with creds: status %d", resp.StatusCode)
	}
	log := r.Log()
	if len(log) != 2 || log[0].Authorization || !log[1].Authorization || log[1].AuthScheme != "Basic" ||
		log[0].Status != 401 || log[1].Status != 200 || log[1].Path != "/v2/" {
		t.Fatalf("log %+v", log)
	}
}

type tokenBody struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

func fetchToken(t *testing.T, r *Registry, user, pass string, scopes ...string) (*http.Response, tokenBody) {
	t.Helper()
	q := url.Values{"service": {"testupstream"}, "scope": scopes}
	resp := get(t, r.URL+"/token?"+q.Encode(), func(req *http.Request) {
		if user != "" || pass != "" {
			req.SetBasicAuth(user, pass)
		}
	})
	var body tokenBody
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
	}
	return resp, body
}

func bearer(tok string) func(*http.Request) {
	return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) }
}

func TestTokenFlow(t *testing.T) {
	r := StartInProcess(t, WithTokenAuth("alice", "s3cret"))
	r.PushRandomImage(t, "team/app", "v1", 1, 256)
	r.ResetLog()

	resp := get(t, r.URL+"/v2/", nil)
	want := `Bearer realm="` + r.URL + `/token",service="testupstream"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("/v2/: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	manifest := r.URL + "/v2/team/app/manifests/v1"
	resp = get(t, manifest, nil)
	want += `,scope="repository:team/app:pull"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("manifest: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}

	for _, bad := range [][2]string{{"", ""}, {"alice", "wrong"}, {"bob", "s3cret"}} {
		if resp, _ := fetchToken(t, r, bad[0], bad[1], "repository:team/app:pull"); resp.StatusCode != 401 {
			t.Fatalf("token with creds %q: status %d, want 401", bad, resp.StatusCode)
		}
	}

	resp, tok := fetchToken(t, r, "alice", "s3cret", "repository:team/app:pull")
	if resp.StatusCode != 200 || tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn != 300 {
		t.Fatalf("token response %d %+v", resp.StatusCode, tok)
	}
	if _, err := time.Parse(time.RFC3339, tok.IssuedAt); err != nil {
		t.Fatalf("issued_at: %v", err)
	}
	if got := get(t, manifest, bearer(tok.Token)).StatusCode; got != 200 {
		t.Fatalf("manifest with token: %d", got)
	}
	if got := get(t, r.URL+"/v2/", bearer(tok.Token)).StatusCode; got != 200 {
		t.Fatalf("/v2/ with token: %d", got)
	}
	// Scoped to team/app: no access to another repo, and no push.
	resp = get(t, r.URL+"/v2/other/manifests/v1", bearer(tok.Token))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("other repo: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if got := get(t, manifest, bearer("made-up")).StatusCode; got != 401 {
		t.Fatalf("bogus token: %d", got)
	}
	if got := r.TokenRequests(); got != 4 {
		t.Fatalf("TokenRequests()=%d, want 4", got)
	}

	r.RevokeTokens()
	if got := get(t, manifest, bearer(tok.Token)).StatusCode; got != 401 {
		t.Fatalf("revoked token: %d", got)
	}
}

func TestTokenOAuthPost(t *testing.T) {
	r := StartInProcess(t, WithTokenAuth("alice", "s3cret"))
	post := func(form url.Values) *http.Response {
		resp, err := http.PostForm(r.URL+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	form := url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"s3cret"},
		"service": {"testupstream"}, "scope": {"repository:a:pull repository:b:pull,push"},
		"client_id": {"pullgate"},
	}
	resp := post(form)
	var body tokenBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("POST token: %d %+v %v", resp.StatusCode, body, err)
	}
	for _, p := range []string{"/v2/a/tags/list", "/v2/b/tags/list"} {
		if got := get(t, r.URL+p, bearer(body.AccessToken)).StatusCode; got == 401 {
			t.Fatalf("%s with OAuth token: 401", p)
		}
	}
	form.Set("password", "wrong")
	if got := post(form).StatusCode; got != 401 {
		t.Fatalf("POST with wrong password: %d", got)
	}
	form.Set("grant_type", "refresh_token")
	if got := post(form).StatusCode; got != 400 {
		t.Fatalf("refresh_token grant: %d", got)
	}
}

func TestTokenTTL(t *testing.T) {
	r := StartInProcess(t, WithTokenAuth("alice", "s3cret"), WithTokenTTL(200*time.Millisecond))
	_, tok := fetchToken(t, r, "alice", "s3cret")
	if tok.ExpiresIn != 1 {
		t.Fatalf("expires_in %d, want 1", tok.ExpiresIn)
	}
	if got := get(t, r.URL+"/v2/", bearer(tok.Token)).StatusCode; got != 200 {
		t.Fatalf("fresh token: %d", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := get(t, r.URL+"/v2/", bearer(tok.Token)).StatusCode; got != 401 {
		t.Fatalf("expired token: %d", got)
	}
}

func TestWithRealm(t *testing.T) {
	r := StartInProcess(t, WithTokenAuth("alice", "s3cret"), WithRealm("http://127.0.0.1:1/evil"))
	got := get(t, r.URL+"/v2/", nil).Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(got, `Bearer realm="http://127.0.0.1:1/evil",`) {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	// The real token endpoint still works for direct use.
	if resp, _ := fetchToken(t, r, "alice", "s3cret"); resp.StatusCode != 200 {
		t.Fatalf("token endpoint: %d", resp.StatusCode)
	}
}

func TestBlobRedirect(t *testing.T) {
	for _, opt := range []Option{WithBasicAuth("alice", "s3cret"), WithTokenAuth("alice", "s3cret")} {
		r := StartInProcess(t, opt, WithBlobRedirect())
		img := r.PushRandomImage(t, "app", "v1", 2, 2048)
		r.ResetLog()
		pullAndCheck(t, r.Ref("app", "v1"), r.Auth(), img)

		// 2 layers + config blob.
		if got := r.CDN.Requests(); got < 3 || r.CDN.RejectedAuth() != 0 {
			t.Fatalf("CDN requests %d, rejected %d", got, r.CDN.RejectedAuth())
		}
		redirects := 0
		for _, e := range r.Log() {
			if e.Status == http.StatusTemporaryRedirect {
				redirects++
			}
		}
		if redirects < 3 {
			t.Fatalf("registry issued %d redirects; log %+v", redirects, r.Log())
		}

		layers, _ := img.Layers()
		h, _ := layers[0].Digest()
		blobURL := r.URL + "/v2/app/blobs/" + h.String()
		creds := func(req *http.Request) { req.SetBasicAuth("alice", "s3cret") }
		if r.auth.mode == authToken {
			_, tok := fetchToken(t, r, "alice", "s3cret", "repository:app:pull")
			creds = bearer(tok.Token)
		}
		resp := get(t, blobURL, creds)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, r.CDN.URL+"/") {
			t.Fatalf("blob GET: %d Location %q", resp.StatusCode, loc)
		}

		if got := get(t, loc, nil); got.StatusCode != 200 || got.Header.Get("Content-Length") == "" {
			t.Fatalf("CDN without auth: %d", got.StatusCode)
		}
		if got := get(t, loc, func(req *http.Request) { req.SetBasicAuth("alice", "s3cret") }).StatusCode; got != 400 {
			t.Fatalf("CDN with Authorization: %d, want 400", got)
		}
		if got := get(t, loc, bearer("x")).StatusCode; got != 400 {
			t.Fatalf("CDN with bearer: %d, want 400", got)
		}
		if r.CDN.RejectedAuth() != 2 {
			t.Fatalf("RejectedAuth()=%d, want 2", r.CDN.RejectedAuth())
		}
		tampered := strings.Replace(loc, "sig=", "sig=00", 1)
		if got := get(t, tampered, nil).StatusCode; got != 403 {
			t.Fatalf("tampered signature: %d, want 403", got)
		}
		expired := r.CDN.signedURL("app", h, time.Now().Add(-time.Second))
		if got := get(t, expired, nil).StatusCode; got != 403 {
			t.Fatalf("expired URL: %d, want 403", got)
		}
		// HEAD stays on the registry.
		head := get(t, blobURL, func(req *http.Request) { req.Method = http.MethodHead; creds(req) })
		if head.StatusCode != 200 || head.Header.Get("Docker-Content-Digest") != h.String() {
			t.Fatalf("blob HEAD: %d", head.StatusCode)
		}
	}
}

func fetchLayer(t *testing.T, r *Registry, repo, tag string) (io.ReadCloser, v1.Layer) {
	t.Helper()
	ref, _ := name.ParseReference(r.Ref(repo, tag))
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(r.Keychain()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling: %v%s", err, r.procLogHint())
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc, layers[0]
}

func checkBlob(t *testing.T, rc io.Reader, size int64, digest v1.Hash) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest.String() {
		t.Fatalf("blob: %d bytes, digest %x; want %d bytes, %s", n, h.Sum(nil), size, digest)
	}
}

func TestPushBlobImage(t *testing.T) {
	r := StartInProcess(t, WithTokenAuth("alice", "s3cret"))
	for _, size := range []int64{0, 1000, 4096, 1 << 20} {
		tag := "s" + strconv.FormatInt(size, 10)
		_, digest := r.PushBlobImage(t, "blob", tag, size)
		rc, _ := fetchLayer(t, r, "blob", tag)
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		checkBlob(t, bytes.NewReader(b), size, digest)
		if size%512 != 0 || size < 1536 {
			continue
		}
		// A valid tar archive holding one file.
		tr := tar.NewReader(bytes.NewReader(b))
		hdr, err := tr.Next()
		if err != nil || hdr.Name != "blob.bin" || hdr.Size != size-1536 {
			t.Fatalf("size %d: tar header %+v %v", size, hdr, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Fatalf("size %d: second entry: %v", size, err)
		}
	}
}

func TestDistributionPushPull(t *testing.T) {
	r := StartDistribution(t)
	if r.User == "" || r.Password == "" {
		t.Fatal("no credentials generated")
	}
	img := r.PushRandomImage(t, "team/app", "v1", 2, 1024)
	pullAndCheck(t, r.Ref("team/app", "v1"), r.Auth(), img)

	_, digest := r.PushBlobImage(t, "blob", "v1", 64<<10)
	rc, _ := fetchLayer(t, r, "blob", "v1")
	checkBlob(t, rc, 64<<10, digest)

	ref, _ := name.ParseReference(r.Ref("team/app", "v1"))
	_, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: r.User, Password: "wrong"}),
		remote.WithContext(t.Context()))
	wantStatus(t, err, http.StatusUnauthorized)
	_, err = remote.Image(ref, remote.WithContext(t.Context()))
	wantStatus(t, err, http.StatusUnauthorized)
}

func TestDistributionSetPassword(t *testing.T) {
	r := StartDistribution(t)
	img := r.PushRandomImage(t, "team/app", "v1", 1, 512)
	old := r.Password
	r.SetPassword(t, "rotated-"+old)
	pullAndCheck(t, r.Ref("team/app", "v1"), r.Auth(), img)
	ref, _ := name.ParseReference(r.Ref("team/app", "v1"))
	_, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: r.User, Password: old}),
		remote.WithContext(t.Context()))
	wantStatus(t, err, http.StatusUnauthorized)
}

func TestDistributionNoAuth(t *testing.T) {
	r := StartDistribution(t, ProcNoAuth())
	if r.User != "" || r.Auth() != authn.Anonymous {
		t.Fatal("ProcNoAuth registry has credentials")
	}
	img := r.PushRandomImage(t, "app", "v1", 1, 512)
	pullAndCheck(t, r.Ref("app", "v1"), authn.Anonymous, img)
}

func TestDistributionProxy(t *testing.T) {
	up := StartInProcess(t, WithTokenAuth("alice", "s3cret"))
	img := up.PushRandomImage(t, "library/app", "v1", 2, 1024)
	up.ResetLog()

	cache := StartDistribution(t, ProcProxy(up.URL, up.User, up.Password))
	pullAndCheck(t, cache.Ref("library/app", "v1"), cache.Auth(), img)
	if up.TokenRequests() == 0 {
		t.Fatalf("proxy never authenticated upstream; upstream log %+v", up.Log())
	}
	for _, e := range up.Log() {
		if e.Path != "/token" && e.Path != "/v2/" && e.Status == http.StatusUnauthorized {
			t.Fatalf("proxy request refused upstream: %+v", e)
		}
	}
}

// TestPushBlobImageLargeMemory pushes a 1 GiB layer and checks the test
// process never held it in memory. Opt-in: it takes tens of seconds.
func TestPushBlobImageLargeMemory(t *testing.T) {
	if os.Getenv("TESTUPSTREAM_LARGE") == "" {
		t.Skip("set TESTUPSTREAM_LARGE=1 to push a 1 GiB layer")
	}
	r := StartDistribution(t)
	const size = 1 << 30
	start := time.Now()
	_, digest := r.PushBlobImage(t, "big", "v1", size)
	t.Logf("pushed 1 GiB in %s", time.Since(start))
	rc, _ := fetchLayer(t, r, "big", "v1")
	checkBlob(t, rc, size, digest)
	t.Logf("pushed and pulled back 1 GiB in %s", time.Since(start))

	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			t.Logf("peak RSS %d MiB", kb>>10)
			if kb > 256<<10 {
				t.Fatalf("peak RSS %d MiB: the layer was buffered", kb>>10)
			}
		}
	}
}
