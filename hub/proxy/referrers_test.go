package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/pullgate/pullgate/internal/testupstream"
)

const sbomType = "application/vnd.example.sbom.v1"

// orasRepo is an oras-go client for repo at registry host (plain HTTP),
// logging in as user:pass. ns, when set, is added to every /v2/ request:
// the hub's mirror form.
func orasRepo(t *testing.T, host, repo, user, pass, ns string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	var base http.RoundTripper = http.DefaultTransport
	if ns != "" {
		base = nsTransport{ns: ns, inner: base}
	}
	r.Client = &auth.Client{
		Client:     &http.Client{Transport: base},
		Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: pass}),
		// Every server here is on loopback, which oras-go refuses as a
		// token realm by default.
		BlockedRealmPrefixes: []netip.Prefix{},
	}
	return r
}

type nsTransport struct {
	ns    string
	inner http.RoundTripper
}

func (t nsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/v2/") {
		req = req.Clone(req.Context())
		q := req.URL.Query()
		q.Set("ns", t.ns)
		req.URL.RawQuery = q.Encode()
	}
	return t.inner.RoundTrip(req)
}

// pushSBOM pushes an image and an artifact that refers to it, with oras-go
// as a signing or SBOM tool would: on an upstream without the referrers
// API, oras-go also maintains the referrers tag schema index.
func pushSBOM(t *testing.T, up *testupstream.Registry) (subject, sbom ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	repo := orasRepo(t, up.Host, "org/app", up.User, up.Password, "")
	subject, err := repo.Resolve(ctx, "v1")
	if err != nil {
		t.Fatalf("resolve on upstream: %v", err)
	}
	sbom, err = oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, sbomType, oras.PackManifestOptions{Subject: &subject})
	if err != nil {
		t.Fatalf("push SBOM to upstream: %v", err)
	}
	return subject, sbom
}

func discover(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	var all []ocispec.Descriptor
	err := repo.Referrers(ctx, subject, "", func(refs []ocispec.Descriptor) error {
		all = append(all, refs...)
		return nil
	})
	return all, err
}

// Referrers discovery with a real client (oras-go, as `oras discover` and
// notation use it) through the hub, in both URL forms, against an upstream
// with the referrers API and one without (distribution 2.8: the client
// must fall back to the tag schema, which it does only if the hub's 404
// does not say NAME_UNKNOWN).
func TestReferrersDiscoveryThroughHub(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *testupstream.Registry
		api   bool
	}{
		{"upstream with referrers API", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "referrers-SECRET-pw"))
		}, true},
		{"distribution without referrers API", func(t *testing.T) *testupstream.Registry {
			return testupstream.StartDistribution(t)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			up := tc.start(t)
			subject, sbom := pushSBOM(t, up)

			// The upstream itself: the client's view without the hub.
			direct, err := discover(ctx, orasRepo(t, up.Host, "org/app", up.User, up.Password, ""), subject)
			if err != nil || len(direct) != 1 {
				t.Fatalf("on the upstream: %v %v", direct, err)
			}

			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			f.install(ws, "web", upstreamHost+"/org/app")
			f.install(ws, "other", upstreamHost+"/org/other")
			tok := f.token(ws, "web", time.Minute)
			otherTok := f.token(ws, "other", time.Minute)

			forms := []struct {
				name       string
				repo, ns   string
				rawPath    string
				rawMissing string
			}{
				{"path prefix", upstreamHost + "/org/app", "", "/v2/" + upstreamHost + "/org/app/referrers/" + subject.Digest.String(),
					"/v2/" + upstreamHost + "/org/nothing/referrers/" + subject.Digest.String()},
				{"mirror", "org/app", upstreamHost, "/v2/org/app/referrers/" + subject.Digest.String() + "?ns=" + upstreamHost,
					"/v2/org/nothing/referrers/" + subject.Digest.String() + "?ns=" + upstreamHost},
			}
			for _, form := range forms {
				t.Run(form.name, func(t *testing.T) {
					got, err := discover(ctx, orasRepo(t, f.host, form.repo, "pullgate", tok, form.ns), subject)
					if err != nil {
						t.Fatalf("discover through hub: %v", err)
					}
					// The artifact type as the upstream reports it (an API
					// may take it from the config media type).
					if len(got) != 1 || got[0].Digest != sbom.Digest || got[0].ArtifactType != direct[0].ArtifactType {
						t.Fatalf("referrers through hub %+v, want the SBOM %s as on the upstream", got, sbom.Digest)
					}

					// What the hub answers, raw: the API's index, or a 404
					// that is not NAME_UNKNOWN.
					resp := f.get(http.MethodGet, form.rawPath, tok)
					body := readBody(t, resp)
					if tc.api && (resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex) {
						t.Fatalf("raw referrers: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
					}
					if !tc.api && (resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"UNSUPPORTED"`) || strings.Contains(body, "NAME_UNKNOWN")) {
						t.Fatalf("raw referrers: %d %s", resp.StatusCode, body)
					}
					// A repository the upstream lacks: NAME_UNKNOWN only if
					// the upstream said so.
					resp = f.get(http.MethodGet, form.rawMissing, tok)
					body = readBody(t, resp)
					if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "DENIED") {
						t.Fatalf("repository outside the allow-list: %d %s", resp.StatusCode, body)
					}

					// An install not allowed the repository learns nothing:
					// refused before the upstream is asked, and not in a way
					// a client reads as "fall back to tags".
					before := f.net.n.Load()
					_, err = discover(ctx, orasRepo(t, f.host, form.repo, "pullgate", otherTok, form.ns), subject)
					if err == nil || errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "response status code 403: denied") {
						t.Fatalf("discover by an install without the repository: %v", err)
					}
					if n := f.net.n.Load() - before; n != 0 {
						t.Fatalf("%d upstream requests for an install without the repository", n)
					}
					// No token, a bad token: 401 with the hub's challenge.
					for _, bad := range []string{"", "not-a-token"} {
						resp := f.get(http.MethodGet, form.rawPath, bad)
						readBody(t, resp)
						if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "/auth/token") {
							t.Fatalf("token %q: %d %q", bad, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
						}
					}
				})
			}

			// A repository the upstream does not have, with an install
			// allowed everything: the upstream's own distinction.
			f.install(ws, "all")
			allTok := f.token(ws, "all", time.Minute)
			resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/nothing/referrers/"+subject.Digest.String(), allTok)
			body := readBody(t, resp)
			wantCode := `"UNSUPPORTED"`
			if tc.api {
				wantCode = `"NAME_UNKNOWN"`
			}
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, wantCode) {
				t.Fatalf("unknown repository: %d %s, want %s", resp.StatusCode, body, wantCode)
			}
			if strings.Contains(body, up.Password) {
				t.Fatal("upstream password in a client answer")
			}
		})
	}
}

// tags/list names the repository the client asked for, in either form,
// against a real distribution upstream (which names its own path).
func TestTagListName(t *testing.T) {
	up := testupstream.StartDistribution(t)
	up.PushRandomImage(t, "team/app", "v1", 1, 64)
	up.PushRandomImage(t, "team/app", "v2", 1, 64)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web", upstreamHost+"/team/app")
	tok := f.token(ws, "web", time.Minute)
	// (TestTagsLinkRewritten covers the Link header.)
	for _, tc := range []struct {
		path, want string
		tags       int
	}{
		{"/v2/" + upstreamHost + "/team/app/tags/list", upstreamHost + "/team/app", 2},
		{"/v2/team/app/tags/list?ns=" + upstreamHost, "team/app", 2},
	} {
		resp := f.get(http.MethodGet, tc.path, tok)
		body := readBody(t, resp)
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s %v", tc.path, resp.StatusCode, body, err)
		}
		if list.Name != tc.want || len(list.Tags) != tc.tags || list.Tags[0] != "v1" {
			t.Fatalf("%s: name %q tags %v, want name %q", tc.path, list.Name, list.Tags, tc.want)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Fatalf("%s: Content-Length %s for %d bytes", tc.path, cl, len(body))
		}
	}

}

// Tag lists are rewritten in memory (up to maxTagList each): only
// tagListSlots large ones at once, the rest wait (and give up with their
// client), so that many requests for a huge list cannot grow the hub
// without bound; small ones take no slot.
func TestTagListsInMemoryBounded(t *testing.T) {
	up := testupstream.StartInProcess(t)
	up.PushRandomImage(t, "team/app", "v1", 1, 64)
	f := newFixture(t)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web", upstreamHost+"/team/app")
	tok := f.token(ws, "web", time.Minute)
	path := "/v2/" + upstreamHost + "/team/app/tags/list"

	for range cap(f.proxy.tagSlots) {
		f.proxy.tagSlots <- struct{}{}
	}
	if resp := f.get(http.MethodGet, path, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("small tag list with every slot taken: %d %s", resp.StatusCode, readBody(t, resp))
	}
	f.proxy.smallTagList = 8 // the list of one tag is large now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.hub.URL+path, nil)
	req.SetBasicAuth("pullgate", tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		body := readBody(t, resp)
		t.Fatalf("tag list served with every slot taken: %d %s", resp.StatusCode, body)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("tag list with every slot taken: %v, want the client's deadline", err)
	}
	for range cap(f.proxy.tagSlots) {
		<-f.proxy.tagSlots
	}
	if resp := f.get(http.MethodGet, path, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("tag list with slots free: %d %s", resp.StatusCode, readBody(t, resp))
	}
}
