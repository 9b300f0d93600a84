package imageref

import "testing"

func TestRegistryOnly(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  bool
	}{
		{"ghcr.io", true},
		{"docker.io", true},
		{"127.0.0.1:5000", true},
		{"localhost", true},
		{"localhost:5000", true},
		{"registry.example.com:443", true},
		{"nginx", false},
		{"nginx:1.27", false},
		{"nginx:5000", false}, // no dot: a repository with a numeric tag
		{"ghcr.io/org/app", false},
		{"ghcr.io/org/app:v1", false},
		{"ghcr.io@sha256:abc", false},
		{"", false},
		{"ghcr.io:", false},
		{"ghcr.io:v1", false},
		{"\f.", false},
		{"ghcr\u0085.io", false},
		{"ghcr.io ", false},
	} {
		if got := RegistryOnly(tc.image); got != tc.want {
			t.Errorf("RegistryOnly(%q) = %v, want %v", tc.image, got, tc.want)
		}
	}
}
