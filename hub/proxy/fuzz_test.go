package proxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// Fuzz targets for what an anonymous client controls before any token is
// checked (the request target, the Authorization header) and for what an
// upstream controls (the Link header passed back to the client).

const fuzzDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// FuzzParseRoute parses request targets as the HTTP server would hand
// them over: whatever parses names a valid repository on a canonical host,
// and the upstream path built from it stays inside that repository.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/ghcr.io/org/app/manifests/v1", "/v2/docker.io/nginx/manifests/latest",
		"/v2/registry-1.docker.io/bitnami/redis/blobs/" + fuzzDigest, "/v2/library/nginx/manifests/1.27?ns=docker.io",
		"/v2/org/app/tags/list?ns=ghcr.io&n=10&last=a", "/v2/localhost:5000/app/referrers/" + fuzzDigest + "?artifactType=x",
		"/v2/ghcr.io/org/../app/manifests/v1", "/v2/ghcr.io/org/%2E%2E/app/manifests/v1", "/v2/org/app/manifests/v1?ns=not_a_host!",
		"/v2/org/app/manifests/v1?ns=user:pw@ghcr.io", "/v2/ghcr.io/org/app/blobs/uploads/", "/v2//ghcr.io//app/manifests/v1",
		"/v2/ghcr.io/org/app/manifests/v1?ns=", "/v2/org/app/manifests/v1?ns=ghcr.io&ns=docker.io", "/v2/a/manifests/b?ns=127.0.0.1:1",
		"/v2/ghcr.io/org/app/tags/list/manifests/v1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		rt, aerr := parseRoute(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
		if aerr != nil {
			if aerr.status < 400 || aerr.status > 499 || aerr.message == "" {
				t.Fatalf("%q: error %+v", target, aerr)
			}
			if len(aerr.message) > 1024 {
				t.Fatalf("%q: error message of %d bytes", target, len(aerr.message))
			}
			return
		}
		if rt.kind == kindBase {
			return
		}
		if again, err := imageref.ParseRepo(rt.repo.Host, rt.repo.Path); err != nil || again != rt.repo {
			t.Fatalf("%q: repository %+v does not parse again (%+v, %v)", target, rt.repo, again, err)
		}
		p := rt.upstreamPath()
		if !strings.HasPrefix(p, "/v2/"+rt.repo.Path+"/") || strings.ContainsAny(p, "?#%\\ \t\r\n") || strings.Contains(p, "//") {
			t.Fatalf("%q: upstream path %q", target, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q: upstream path %q has a dot segment", target, p)
			}
		}
		switch rt.kind {
		case kindManifests:
			if !tagRE.MatchString(rt.ref) && !isDigest(rt.ref) {
				t.Fatalf("%q: manifest reference %q", target, rt.ref)
			}
		case kindBlobs, kindReferrers:
			if !isDigest(rt.ref) {
				t.Fatalf("%q: %s reference %q is no digest", target, rt.kind, rt.ref)
			}
		case kindTags:
			if p != "/v2/"+rt.repo.Path+"/tags/list" {
				t.Fatalf("%q: tags path %q", target, p)
			}
		default:
			t.Fatalf("%q: kind %q", target, rt.kind)
		}
		if rt.mirror != (u.Query().Get("ns") != "") {
			t.Fatalf("%q: mirror=%v", target, rt.mirror)
		}
	})
}

// FuzzRewriteLink feeds upstream Link headers: the rewritten link always
// points back at the hub, at the same repository and the same form the
// client used, and carries only the pagination parameters.
func FuzzRewriteLink(f *testing.F) {
	for _, s := range []string{
		`</v2/org/app/tags/list?n=10&last=b>; rel="next"`,
		`<https://evil.example/v2/x/tags/list?n=1&last=z&ns=evil.example>; rel="next"`,
		`</v2/org/app/referrers/` + fuzzDigest + `?artifactType=application%2Fvnd.example&n=5>; rel="next"`,
		`<>; rel="next"`, `>x<`, `<%zz>`, `<//evil.example/path?n=1>`, `<?n=1&n=2&last=%0d%0aSet-Cookie:x>`,
		`</v2/a/tags/list?last=` + strings.Repeat("z", 300) + `>`,
	} {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, link string, mirror, referrers bool) {
		rt := route{kind: kindTags, repo: imageref.Repo{Host: "ghcr.io", Path: "org/app"}, mirror: mirror}
		suffix := "/tags/list"
		if referrers {
			rt.kind, rt.ref = kindReferrers, fuzzDigest
			suffix = "/referrers/" + fuzzDigest
		}
		out, ok := rewriteLink(link, rt)
		if !ok {
			return
		}
		end := strings.IndexByte(out, '>')
		if !strings.HasPrefix(out, "<") || end < 0 {
			t.Fatalf("%q: rewritten %q", link, out)
		}
		if strings.ContainsAny(out[:end+1], "\r\n\x00 \"") {
			t.Fatalf("%q: rewritten URL %q carries raw control characters or spaces", link, out[:end+1])
		}
		u, err := url.Parse(out[1:end])
		if err != nil {
			t.Fatalf("%q: rewritten URL %q does not parse: %v", link, out[1:end], err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("%q: rewritten URL %q leaves the hub", link, u)
		}
		want := "/v2/ghcr.io/org/app" + suffix
		if mirror {
			want = "/v2/org/app" + suffix
		}
		if u.Path != want {
			t.Fatalf("%q: rewritten path %q, want %q", link, u.Path, want)
		}
		allowed := map[string]bool{"n": !referrers, "last": !referrers, "artifactType": referrers, "ns": mirror}
		if mirror {
			allowed["n"], allowed["last"], allowed["artifactType"] = true, true, true
		}
		for k := range u.Query() {
			if !allowed[k] {
				t.Fatalf("%q: rewritten URL %q carries parameter %q", link, u, k)
			}
		}
		if mirror && u.Query().Get("ns") != "ghcr.io" {
			t.Fatalf("%q: mirror link %q lost its ns", link, u)
		}
	})
}

// FuzzCredentials: the Authorization header parser never panics, and a
// well-formed Basic or Bearer header yields exactly the password or token.
func FuzzCredentials(f *testing.F) {
	f.Add("pullgate", "eyJ.eyJ.sig", "")
	f.Add("", "", "Basic !!!")
	f.Add("a:b", "c:d", "Bearer  tok ")
	f.Add("u", "p", "basic dTpw")
	f.Add("u", "p", "Basic dTpw\x00")
	f.Fuzz(func(t *testing.T, user, pass, raw string) {
		r := &http.Request{Header: http.Header{}}
		r.Header.Set("Authorization", raw)
		_, _ = credentials(r)

		if !strings.Contains(user, ":") {
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
			if got, ok := credentials(r); !ok || got != pass {
				t.Fatalf("Basic %q:%q gave %q %v", user, pass, got, ok)
			}
		}
		if tok := strings.TrimSpace(pass); tok == pass && !strings.ContainsAny(pass, "\r\n") {
			r.Header = http.Header{"Authorization": {"Bearer " + pass}}
			if got, ok := credentials(r); !ok || got != tok {
				t.Fatalf("Bearer %q gave %q %v", pass, got, ok)
			}
		}
	})
}

// FuzzTokenScope: a token request's scopes are client input. Whatever is
// granted is pull on a repository name the allow-list allows, at most once
// each, and the grant spells back to the same names.
func FuzzTokenScope(f *testing.F) {
	for _, s := range []string{"repository:registry.test/org/app:pull", "repository:localhost:5000/app:pull,push", "repository:org/app:*",
		"registry:catalog:*", "repository::pull", "repository:a:", "repository(plugin):x/y:pull", "repository:registry.test/org/other:pull"} {
		f.Add(s, "repository:org/app:pull")
	}
	inst := store.Install{Name: "web", Repos: []string{"registry.test/org/app", "localhost:5000/**"}}
	f.Fuzz(func(t *testing.T, a, b string) {
		names, granted, aerr := grantScopes(token.Claims{}, inst, []string{a, b})
		if aerr != nil {
			t.Fatalf("two scopes refused: %v", aerr.message)
		}
		want := make([]string, 0, len(names))
		for i, n := range names {
			if len(n) > 512 || slices.Contains(names[:i], n) || !nameAllowed(inst, n) {
				t.Fatalf("granted %q", n)
			}
			if got, ok := pullScope("repository:" + n + ":pull"); !ok || got != n {
				t.Fatalf("granted name %q does not spell back (%q)", n, got)
			}
			want = append(want, "repository:"+n+":pull")
		}
		if granted != strings.Join(want, " ") {
			t.Fatalf("granted %q for names %q", granted, names)
		}
		// A token scoped to these names never widens.
		narrowed, _, _ := grantScopes(token.Claims{Scoped: true, Scope: names[:min(1, len(names))]}, inst, []string{a, b})
		for _, n := range narrowed {
			if n != names[0] {
				t.Fatalf("narrowed token widened to %q", n)
			}
		}
	})
}
