package kubeletconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"

	kubeletv1 "k8s.io/kubelet/config/v1"
)

// parseStrict reads a printed configuration back into the kubelet's type,
// refusing unknown fields and duplicate keys.
func parseStrict(t *testing.T, y []byte) kubeletv1.CredentialProviderConfig {
	t.Helper()
	cfg, err := Parse(y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return cfg
}

func TestBuildAndMarshal(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want []string // lines in the YAML
	}{
		{name: "single workspace", o: Options{MatchImages: []string{"ghcr.io", "hub.example.com"}},
			want: []string{"apiVersion: kubelet.config.k8s.io/v1", "kind: CredentialProviderConfig", "name: pullgate-credential-provider",
				"- ghcr.io", "defaultCacheDuration: 5m0s", "apiVersion: credentialprovider.kubelet.k8s.io/v1", "- --socket", "- /run/pullgate/agent.sock"}},
		{name: "shared", o: Options{Shared: true, MatchImages: []string{"*.dkr.ecr.*.amazonaws.com"}, Socket: "/var/run/pg.sock",
			PluginName: "pg", CacheDuration: 90 * time.Second},
			want: []string{"tokenAttributes:", "serviceAccountTokenAudience: pullgate", "cacheType: ServiceAccount",
				"requireServiceAccount: true", "'*.dkr.ecr.*.amazonaws.com'", "- /var/run/pg.sock", "name: pg", "defaultCacheDuration: 1m30s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Build(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			y, err := Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(y), w) {
					t.Errorf("YAML lacks %q:\n%s", w, y)
				}
			}
			back := parseStrict(t, y)
			if !reflect.DeepEqual(back, cfg) {
				t.Fatalf("round trip differs:\n%+v\n%+v", back, cfg)
			}
			p := back.Providers[0]
			if p.APIVersion != ProviderAPIVersion || p.DefaultCacheDuration == nil || len(p.MatchImages) == 0 {
				t.Fatalf("provider %+v", p)
			}
			if tc.o.Shared {
				ta := p.TokenAttributes
				if ta == nil || ta.CacheType != kubeletv1.ServiceAccountServiceAccountTokenCacheType || ta.RequireServiceAccount == nil || !*ta.RequireServiceAccount || ta.ServiceAccountTokenAudience != "pullgate" {
					t.Fatalf("tokenAttributes %+v", ta)
				}
			} else if p.TokenAttributes != nil {
				t.Fatal("tokenAttributes on a single-workspace cluster")
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	for name, o := range map[string]Options{
		"no match image": {},
		"scheme":         {MatchImages: []string{"https://ghcr.io"}},
		"empty pattern":  {MatchImages: []string{""}},
		"space":          {MatchImages: []string{"ghcr.io app"}},
		"plugin path":    {MatchImages: []string{"ghcr.io"}, PluginName: "/usr/bin/x"},
		"negative ttl":   {MatchImages: []string{"ghcr.io"}, CacheDuration: -time.Second},
	} {
		if _, err := Build(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseStrict(t *testing.T) {
	for name, y := range map[string]string{
		"duplicate key": "apiVersion: kubelet.config.k8s.io/v1\napiVersion: x\nkind: CredentialProviderConfig\nproviders: []\n",
		"unknown field": "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: x\n  matchImage: [a]\n",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
