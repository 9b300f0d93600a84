package imageref

import "testing"

func TestPatternOverlaps(t *testing.T) {
	for _, tc := range []struct {
		pattern, prefix string
		want            bool
	}{
		{"ghcr.io/acme/*", "ghcr.io", true},
		{"ghcr.io/acme/*", "ghcr.io/acme", true},
		{"ghcr.io/acme/*", "ghcr.io/acme/web", true},
		{"ghcr.io/acme/*", "ghcr.io/acme/web/sub", false},
		{"ghcr.io/acme/**", "ghcr.io/acme/web/sub", true},
		{"ghcr.io/**", "ghcr.io/acme/web", true},
		{"ghcr.io/ac*/web", "ghcr.io/acme", true},
		{"ghcr.io/acme/*", "ghcr.io/other", false},
		{"ghcr.io/acme/web", "ghcr.io/acme/web", true},
		{"ghcr.io/acme", "ghcr.io/acme/web", false},
		{"ghrc.io/acme/*", "ghcr.io", false}, // the typo the warning is for
		{"docker.io/nginx", "docker.io/library", true},
		{"docker.io/nginx", "docker.io/acme", false},
		{"docker.io/nginx", "registry-1.docker.io", true},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		pre, err := ParsePrefix(tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Overlaps(pre); got != tc.want {
			t.Errorf("%s overlaps %s = %v, want %v", tc.pattern, tc.prefix, got, tc.want)
		}
	}
}
