package proxy

import (
	"net/http/httptest"
	"testing"
)

func TestParseRoute(t *testing.T) {
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		target          string
		kind, repo, ref string
		mirror          bool
		status          int // 0: parses
	}{
		{"/v2/", kindBase, "", "", false, 0},
		{"/v2/ghcr.io/org/app/manifests/v1", kindManifests, "ghcr.io/org/app", "v1", false, 0},
		{"/v2/docker.io/nginx/manifests/latest", kindManifests, "docker.io/library/nginx", "latest", false, 0},
		{"/v2/index.docker.io/library/nginx/manifests/latest", kindManifests, "docker.io/library/nginx", "latest", false, 0},
		{"/v2/registry-1.docker.io/bitnami/redis/blobs/" + dgst, kindBlobs, "docker.io/bitnami/redis", dgst, false, 0},
		{"/v2/library/nginx/manifests/1.27?ns=docker.io", kindManifests, "docker.io/library/nginx", "1.27", true, 0},
		{"/v2/org/app/tags/list?ns=ghcr.io&n=10", kindTags, "ghcr.io/org/app", "", true, 0},
		{"/v2/localhost:5000/app/referrers/" + dgst, kindReferrers, "localhost:5000/app", dgst, false, 0},
		{"/v2/ghcr.io/org/app/manifests/" + dgst, kindManifests, "ghcr.io/org/app", dgst, false, 0},
		{"/v2/ghcr.io/org/app/blobs/latest", "", "", "", false, 400},
		{"/v2/ghcr.io/org/app/referrers/v1", "", "", "", false, 400},
		{"/v2/ghcr.io/org/app/manifests/-bad", "", "", "", false, 400},
		{"/v2/ghcr.io/manifests/v1", "", "", "", false, 404}, // host but no repository
		{"/v2/app/manifests/v1", "", "", "", false, 404},     // no host, no ns
		{"/v2/ghcr.io/org/app", "", "", "", false, 404},
		{"/v2/ghcr.io/org/app/blobs/uploads/", "", "", "", false, 404},
		{"/v2/ghcr.io/org/../app/manifests/v1", "", "", "", false, 400},
		{"/v2/ghcr.io/org/%2E%2E/app/manifests/v1", "", "", "", false, 400},
		{"/v2/org/app/manifests/v1?ns=not_a_host!", "", "", "", false, 400},
		{"/other", "", "", "", false, 404},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			rt, aerr := parseRoute(httptest.NewRequest("GET", tc.target, nil))
			if tc.status != 0 {
				if aerr == nil || aerr.status != tc.status {
					t.Fatalf("got %+v %+v, want status %d", rt, aerr, tc.status)
				}
				if aerr.message == "" {
					t.Fatal("error without message")
				}
				return
			}
			if aerr != nil {
				t.Fatalf("error %+v", aerr)
			}
			if rt.kind != tc.kind || rt.ref != tc.ref || rt.mirror != tc.mirror || (tc.repo != "" && rt.repo.String() != tc.repo) {
				t.Fatalf("got kind=%s repo=%s ref=%s mirror=%v", rt.kind, rt.repo, rt.ref, rt.mirror)
			}
		})
	}
}

func TestUpstreamPathDockerHub(t *testing.T) {
	rt, aerr := parseRoute(httptest.NewRequest("GET", "/v2/docker.io/nginx/manifests/latest", nil))
	if aerr != nil {
		t.Fatal(aerr)
	}
	if got := rt.upstreamPath(); got != "/v2/library/nginx/manifests/latest" {
		t.Fatalf("upstream path %s", got)
	}
}
