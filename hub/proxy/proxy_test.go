package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testupstream"
)

const upstreamHost = "registry.test"

func TestPullThroughHub(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *testupstream.Registry
	}{
		{"basic auth", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "basic-SECRET-pw"))
		}},
		{"token auth", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "token-SECRET-pw"))
		}},
		{"token auth with CDN redirects", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "cdn-SECRET-pw"), testupstream.WithBlobRedirect())
		}},
		{"distribution with htpasswd", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartDistribution(t)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.start(t)
			want := up.PushRandomImage(t, "org/app", "v1", 2, 4096)
			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			f.install(ws, "web")
			tok := f.token(ws, "web", 10*time.Minute)

			got, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tok)
			if err != nil {
				t.Fatalf("pull through hub: %v", err)
			}
			wd, _ := want.Digest()
			gd, _ := got.Digest()
			if wd != gd {
				t.Fatalf("digest through hub %s, upstream %s", gd, wd)
			}
			if up.CDN != nil {
				if up.CDN.Requests() == 0 {
					t.Fatal("blobs did not come from the CDN: redirect not followed server-side")
				}
				if up.CDN.RejectedAuth() != 0 {
					t.Fatal("hub sent an Authorization header to the CDN")
				}
			}
			events := f.audit.all()
			var blobs, manifests int
			for _, e := range events {
				if e.Workspace != "acme" || e.Install != "web" || e.Upstream != upstreamHost || e.Repository != "org/app" {
					t.Fatalf("audit event %+v", e)
				}
				switch e.Kind {
				case "blob":
					blobs++
					if e.Method == http.MethodGet && e.Status == http.StatusOK && e.Bytes == 0 {
						t.Fatalf("blob audit event without bytes: %+v", e)
					}
				case "manifest":
					manifests++
				}
			}
			if blobs < 3 || manifests < 1 {
				t.Fatalf("audit: %d blob and %d manifest events, want >= 3 and >= 1", blobs, manifests)
			}
			if strings.Contains(f.logs.String(), up.Password) {
				t.Fatal("upstream password in hub logs")
			}
		})
	}
}

func TestMirrorForm(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "mirror-SECRET"))
	img := up.PushRandomImage(t, "org/app", "v1", 1, 1024)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	// What containerd sends to a hosts.toml mirror: the repository without
	// host, the upstream in ?ns=.
	resp := f.get(http.MethodGet, "/v2/org/app/manifests/v1?ns="+upstreamHost, tok, "Accept", "application/vnd.docker.distribution.manifest.v2+json")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mirror manifest: %d %s", resp.StatusCode, body)
	}
	d, _ := img.Digest()
	if resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("digest header %q, want %s", resp.Header.Get("Docker-Content-Digest"), d)
	}
	// Without ns and without a host in the path, the proxy cannot know the
	// upstream and says so.
	resp = f.get(http.MethodGet, "/v2/org/app/manifests/v1", tok)
	if body := readBody(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "names no upstream host") {
		t.Fatalf("no host: %d %s", resp.StatusCode, body)
	}
}

func TestHeadRangeAndTags(t *testing.T) {
	up := testupstream.StartDistribution(t) // paginates tags with Link
	img := up.PushRandomImage(t, "org/app", "v1", 1, 8192)
	up.PushRandomImage(t, "org/app", "v2", 1, 16)
	up.PushRandomImage(t, "org/app", "v3", 1, 16)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	blob := "/v2/" + upstreamHost + "/org/app/blobs/" + ld.String()

	resp := f.get(http.MethodHead, blob, tok)
	if b := readBody(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") == "" || b != "" {
		t.Fatalf("HEAD blob: %d len=%q body=%q", resp.StatusCode, resp.Header.Get("Content-Length"), b)
	}
	resp = f.get(http.MethodGet, blob, tok, "Range", "bytes=0-99")
	if b := readBody(t, resp); resp.StatusCode != http.StatusPartialContent || len(b) != 100 {
		t.Fatalf("range GET: %d, %d bytes", resp.StatusCode, len(b))
	}

}

// Tag pagination: n and last reach the upstream, and its Link header comes
// back pointing at the hub in the form the client used.
func TestTagsLinkRewritten(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/org/app/tags/list" && r.URL.Query().Get("n") == "1" {
			w.Header().Set("Link", `</v2/org/app/tags/list?last=v1&n=1>; rel="next"`)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"org/app","tags":["v1"]}`))
			return
		}
		if r.URL.Path == "/v2/" {
			return
		}
		http.NotFound(w, r)
	}))
	defer up.Close()
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, &testupstream.Registry{URL: up.URL}, "tags-SECRET")
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)
	for _, tc := range []struct{ path, wantLink string }{
		{"/v2/" + upstreamHost + "/org/app/tags/list?n=1", `</v2/` + upstreamHost + `/org/app/tags/list?last=v1&n=1>; rel="next"`},
		{"/v2/org/app/tags/list?n=1&ns=" + upstreamHost, `</v2/org/app/tags/list?last=v1&n=1&ns=` + upstreamHost + `>; rel="next"`},
	} {
		resp := f.get(http.MethodGet, tc.path, tok)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"v1"`) {
			t.Fatalf("tags %s: %d %s", tc.path, resp.StatusCode, body)
		}
		if link := resp.Header.Get("Link"); link != tc.wantLink {
			t.Fatalf("Link %q, want %q", link, tc.wantLink)
		}
	}
}

func TestRevocationIsImmediate(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "revoke-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"
	ctx := context.Background()
	off, on := false, true

	tests := []struct {
		name   string
		revoke func(f *fixture, ws store.Workspace)
		status int
	}{
		{"install disabled", func(f *fixture, ws store.Workspace) {
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &off}))
		}, http.StatusUnauthorized},
		{"install disabled and enabled again", func(f *fixture, ws store.Workspace) {
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &off}))
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &on}))
		}, http.StatusUnauthorized},
		{"install repos changed", func(f *fixture, ws store.Workspace) {
			repos := []string{upstreamHost + "/org/*"}
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Repos: &repos}))
		}, http.StatusUnauthorized},
		{"install deleted", func(f *fixture, ws store.Workspace) {
			f.mustErr(f.store.DeleteInstall(ctx, ws.Name, "web"))
		}, http.StatusUnauthorized},
		{"workspace deleted", func(f *fixture, ws store.Workspace) {
			f.must(f.store.DeleteWorkspace(ctx, ws.Name, true))
		}, http.StatusUnauthorized},
		{"credential disabled", func(f *fixture, ws store.Workspace) {
			f.must(f.store.UpdateCredential(ctx, ws.Name, "reg", store.CredentialUpdate{Enabled: &off}))
		}, http.StatusForbidden},
		{"credential deleted", func(f *fixture, ws store.Workspace) {
			f.mustErr(f.store.DeleteCredential(ctx, ws.Name, "reg"))
		}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			f.install(ws, "web")
			tok := f.token(ws, "web", 10*time.Minute)
			if resp := f.get(http.MethodHead, manifest, tok); resp.StatusCode != http.StatusOK {
				t.Fatalf("before revoke: %d", resp.StatusCode)
			}
			tc.revoke(f, ws)
			before := f.net.n.Load()
			resp := f.get(http.MethodGet, manifest, tok)
			body := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("next request after revoke: %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if f.net.n.Load() != before {
				t.Fatal("a revoked request reached the upstream")
			}
			// The token endpoint refuses it too, so clients cannot renew.
			if resp := f.get(http.MethodGet, "/auth/token?service=pullgate", tok); resp.StatusCode == http.StatusOK && tc.status == http.StatusUnauthorized {
				t.Fatal("token endpoint accepted a revoked token")
			}
		})
	}
}

func (f *fixture) must(_ any, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) mustErr(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestBadTokensRefused(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "badtok-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	good := f.token(ws, "web", time.Minute)

	foreign := token.NewKeyring()
	fk, _ := token.NewKey()
	foreign.Add(fk, true)
	in, _ := f.store.GetInstall(context.Background(), ws.Name, "web")
	foreignTok, _, _ := foreign.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Generation: in.Generation}, time.Minute)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	wrongWS, _, _ := f.keys.Mint(token.Claims{Install: in.ID, Workspace: "ws_other", Generation: in.Generation}, time.Minute)

	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"
	cases := map[string]string{"none": "", "garbage": "garbage", "tampered": tampered, "foreign key": foreignTok, "wrong workspace": wrongWS}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			before := f.net.n.Load()
			resp := f.get(http.MethodGet, manifest, tok)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="`+f.hub.URL+`/auth/token"`) {
				t.Fatalf("challenge %q", ch)
			}
			if f.net.n.Load() != before {
				t.Fatal("refused request reached the upstream")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		if resp := f.get(http.MethodHead, manifest, good); resp.StatusCode != http.StatusOK {
			t.Fatalf("fresh token: %d", resp.StatusCode)
		}
		f.clock.Store(time.Now().Add(2 * time.Minute).UnixNano())
		defer f.clock.Store(0)
		resp := f.get(http.MethodGet, manifest, good)
		if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") {
			t.Fatalf("expired token: %d %s", resp.StatusCode, body)
		}
	})
}

func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t)
	ws := f.workspace("acme")
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	resp := f.get(http.MethodGet, "/auth/token?service=pullgate", tok)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"token":"`+tok+`"`) || !strings.Contains(body, `"expires_in":`) {
		t.Fatalf("GET token: %d %s", resp.StatusCode, body)
	}
	post := func(form string) (*http.Response, string) {
		r, err := http.Post(f.hub.URL+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		return r, readBody(t, r)
	}
	if r, b := post("grant_type=password&username=x&service=pullgate&password=" + tok); r.StatusCode != http.StatusOK || !strings.Contains(b, `"access_token":"`+tok) {
		t.Fatalf("POST password grant: %d %s", r.StatusCode, b)
	}
	if r, b := post("grant_type=refresh_token&refresh_token=x"); r.StatusCode != http.StatusBadRequest || !strings.Contains(b, "grant_type") {
		t.Fatalf("refresh grant: %d %s", r.StatusCode, b)
	}
	if r, b := post("grant_type=password&password=" + strings.Repeat("a", 20<<10)); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("huge form: %d %s", r.StatusCode, b)
	}
	if r, _ := post("grant_type=password&password=nope"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad password grant: %d", r.StatusCode)
	}
}

// SSRF: a path can name any host, but only a host the workspace has a
// credential for is ever contacted, and malformed names never get as far.
func TestNoRequestToUnconfiguredHosts(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "ssrf-SECRET"))
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	tests := []struct {
		path   string
		status int
	}{
		{"/v2/evil.example/org/app/manifests/latest", http.StatusForbidden},
		{"/v2/169.254.169.254/latest/meta-data/manifests/x", http.StatusForbidden},
		{"/v2/127.0.0.1:22/x/manifests/latest", http.StatusForbidden},
		{"/v2/" + strings.TrimPrefix(up.URL, "http://") + "/org/app/manifests/v1", http.StatusForbidden}, // the endpoint is not the name
		{"/v2/x/manifests/latest?ns=metadata.google.internal", http.StatusForbidden},
		{"/v2/" + upstreamHost + "/org/../../etc/manifests/latest", http.StatusBadRequest},
		{"/v2/" + upstreamHost + "/org/%2e%2e/x/manifests/latest", http.StatusBadRequest},
		{"/v2/" + upstreamHost + "/org/app/manifests/..", http.StatusBadRequest},
		{"/v2/" + upstreamHost + "/org/app/blobs/sha256:../../x", http.StatusNotFound},
		{"/v2/" + upstreamHost + "/Org/App/manifests/v1", http.StatusBadRequest},
		{"/v2/" + upstreamHost + "/org/app/blobs/uploads/", http.StatusNotFound},
		{"/v2/" + upstreamHost + "/org/app/manifests/" + strings.Repeat("a", 200), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			before, upBefore := f.net.n.Load(), up.Requests()
			resp := f.get(http.MethodGet, tc.path, tok)
			body := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if !strings.Contains(body, `"message":"`) {
				t.Fatalf("error without a message: %s", body)
			}
			if f.net.n.Load() != before || up.Requests() != upBefore {
				t.Fatal("the hub sent a request upstream")
			}
		})
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		resp := f.get(method, "/v2/"+upstreamHost+"/org/app/blobs/uploads/", tok)
		if body := readBody(t, resp); resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, "pull-only") {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
		}
	}
}

// An upstream that names a token realm outside its own domain never gets
// the credential sent there (CVE-2026-33540 in distribution's proxy).
func TestForeignRealmRefused(t *testing.T) {
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		evilHits.Add(1)
		w.Write([]byte(`{"token":"x"}`))
	}))
	defer evil.Close()
	port := evil.URL[strings.LastIndexByte(evil.URL, ':')+1:]
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "realm-SECRET"), testupstream.WithRealm("http://localhost:"+port+"/token"))
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/app/manifests/v1", f.token(ws, "web", time.Minute))
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "realm outside its own domain") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if evilHits.Load() != 0 || up.TokenRequests() != 0 {
		t.Fatalf("credential sent to a realm: foreign=%d upstream token endpoint=%d", evilHits.Load(), up.TokenRequests())
	}
	if strings.Contains(resp.Header.Get("WWW-Authenticate"), "localhost") {
		t.Fatal("upstream challenge passed to the client")
	}
}

func TestWorkspacesAreIsolated(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "iso-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	f := newFixture(t)
	a, b, c := f.workspace("a"), f.workspace("b"), f.workspace("c")
	f.credential(a, "reg", upstreamHost, up, up.Password)
	f.credential(c, "reg", upstreamHost, up, "wrong-password") // same upstream, wrong secret
	for _, ws := range []store.Workspace{a, b, c} {
		f.install(ws, "web")
	}
	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"
	if resp := f.get(http.MethodHead, manifest, f.token(a, "web", time.Minute)); resp.StatusCode != http.StatusOK {
		t.Fatalf("workspace a: %d", resp.StatusCode)
	}
	// b has no credential for the upstream: refused without contacting it.
	before := f.net.n.Load()
	resp := f.get(http.MethodGet, manifest, f.token(b, "web", time.Minute))
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no registry credential") {
		t.Fatalf("workspace b: %d %s", resp.StatusCode, body)
	}
	if f.net.n.Load() != before {
		t.Fatal("workspace b's request reached the upstream")
	}
	// c's own (wrong) credential is used, never a's cached connection.
	resp = f.get(http.MethodGet, manifest, f.token(c, "web", time.Minute))
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "refused registry credential reg") {
		t.Fatalf("workspace c: %d %s", resp.StatusCode, body)
	}
}

func TestAllowListAndLongestPrefix(t *testing.T) {
	upA := testupstream.StartInProcess(t, testupstream.WithBasicAuth("a", "prefixA-SECRET"))
	upB := testupstream.StartInProcess(t, testupstream.WithTokenAuth("b", "prefixB-SECRET"))
	upA.PushRandomImage(t, "org-a/app", "v1", 1, 64)
	upA.PushRandomImage(t, "other/app", "v1", 1, 64)
	upB.PushRandomImage(t, "org-b/app", "v1", 1, 64)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "general", upstreamHost, upA, upA.Password)
	f.credential(ws, "org-b", upstreamHost+"/org-b", upB, upB.Password)
	f.install(ws, "web", upstreamHost+"/org-*/*")
	tok := f.token(ws, "web", time.Minute)

	for _, tc := range []struct {
		repo   string
		status int
	}{
		{"org-a/app", http.StatusOK},
		{"org-b/app", http.StatusOK}, // only upB has it: the longer prefix won
		{"other/app", http.StatusForbidden},
	} {
		resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/"+tc.repo+"/manifests/v1", tok)
		if body := readBody(t, resp); resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.repo, resp.StatusCode, body, tc.status)
		}
	}
	off := false
	if _, err := f.store.UpdateCredential(context.Background(), ws.Name, "org-b", store.CredentialUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	// The disabled longest match is not replaced by the shorter one.
	resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org-b/app/manifests/v1", tok)
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "org-b") || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled prefix: %d %s", resp.StatusCode, body)
	}
}

// Upstream failures reach the client as clear registry errors; upstream
// error texts and challenges do not.
func TestUpstreamErrorsMapped(t *testing.T) {
	var mode atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		switch mode.Load().(string) {
		case "429":
			w.Header().Set("Retry-After", "7")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"echo: `+r.Header.Get("Authorization")+`"}]}`, http.StatusTooManyRequests)
		case "500":
			http.Error(w, "boom "+r.Header.Get("Authorization"), http.StatusInternalServerError)
		case "404":
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
		case "401":
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "redirect-loop":
			http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		}
	}))
	defer up.Close()
	f := newFixture(t)
	ws := f.workspace("acme")
	reg := &testupstream.Registry{URL: up.URL, User: "u"}
	f.credential(ws, "reg", upstreamHost, reg, "errors-SECRET")
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	for _, tc := range []struct {
		mode, code string
		status     int
	}{
		{"429", "TOOMANYREQUESTS", http.StatusTooManyRequests},
		{"500", "UNAVAILABLE", http.StatusBadGateway},
		{"404", "MANIFEST_UNKNOWN", http.StatusNotFound},
		{"401", "DENIED", http.StatusForbidden},
		{"redirect-loop", "UNAVAILABLE", http.StatusBadGateway},
	} {
		mode.Store(tc.mode)
		resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/app/manifests/v1", tok)
		body := readBody(t, resp)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.code) {
			t.Fatalf("%s: %d %s", tc.mode, resp.StatusCode, body)
		}
		if strings.Contains(body, "Basic ") || strings.Contains(body, "echo") || strings.Contains(body, "boom") {
			t.Fatalf("%s: upstream text passed through: %s", tc.mode, body)
		}
		if tc.mode == "429" && resp.Header.Get("Retry-After") != "7" {
			t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%s: upstream challenge passed to client", tc.mode)
		}
	}
}

// skopeo is the containers-image client that CRI-O and podman share.
func TestSkopeoPullsThroughHub(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not found: apt-get install skopeo (the .ci/run script installs it)")
	}
	up := testupstream.StartDistribution(t)
	want := up.PushRandomImage(t, "org/app", "v1", 2, 2048)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)

	dir := filepath.Join(t.TempDir(), "img")
	ref := fmt.Sprintf("docker://%s/%s/org/app:v1", f.host, upstreamHost)
	out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "--src-creds", "pullgate:"+tok, ref, "dir:"+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	wd, _ := want.Digest()
	out, err = exec.Command(skopeo, "inspect", "--tls-verify=false", "--creds", "pullgate:"+tok, "--format", "{{.Digest}}", ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != wd.String() {
		t.Fatalf("skopeo inspect: %v %s, want %s", err, out, wd)
	}
	if strings.Contains(f.logs.String(), up.Password) {
		t.Fatal("upstream password in logs")
	}
}

// A token issued to a node stops working when the node is revoked or its
// cluster deleted.
func TestNodeTokensRevoked(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "node-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		revoke func(f *fixture)
	}{
		{"node revoked", func(f *fixture) { f.must(f.store.RevokeNode(ctx, "edge", "n1")) }},
		{"cluster deleted", func(f *fixture) { f.must(f.store.DeleteCluster(ctx, "edge", false)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			c, err := f.store.CreateCluster(ctx, store.Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("h"))
			if err != nil {
				t.Fatal(err)
			}
			n, _ := f.store.CreateNode(ctx, c.ID, "n1", []byte("h"))
			// Not bound to the cluster, so that deleting the cluster needs no
			// force (which would also bump the install's generation): the
			// node check alone must refuse the token.
			in, _ := f.store.CreateInstall(ctx, ws.Name, store.Install{Name: "web", Enabled: true})
			tok, _, _ := f.keys.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Cluster: c.ID, Node: n.ID, Generation: in.Generation}, time.Minute)
			if resp := f.get(http.MethodHead, manifest, tok); resp.StatusCode != http.StatusOK {
				t.Fatalf("before: %d", resp.StatusCode)
			}
			tc.revoke(f)
			resp := f.get(http.MethodGet, manifest, tok)
			if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "node") {
				t.Fatalf("after: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// The referrers API (OCI 1.1) passes through, with artifactType filtering.
func TestReferrers(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "referrers-SECRET"))
	img := up.PushRandomImage(t, "org/app", "v1", 1, 64)
	d, _ := img.Digest()
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)
	for _, path := range []string{
		"/v2/" + upstreamHost + "/org/app/referrers/" + d.String(),
		"/v2/org/app/referrers/" + d.String() + "?ns=" + upstreamHost + "&artifactType=application%2Fexample",
	} {
		resp := f.get(http.MethodGet, path, tok)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"manifests"`) || !strings.Contains(resp.Header.Get("Content-Type"), "application/vnd.oci.image.index.v1+json") {
			t.Fatalf("%s: %d %q %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}
