//go:build e2e_k8s

package k8s

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestSecretMatcher checks grepClusterState's matcher on the forms a
// password takes in cluster state. It needs no cluster (go test -tags
// e2e_k8s -run TestSecretMatcher ./e2e/k8s/).
func TestSecretMatcher(t *testing.T) {
	const pw = "0f3c9a7be21d44c58e6a9b0d1c2e3f40"
	secretJSON := func(data []byte) []byte {
		b, _ := json.Marshal(&corev1.Secret{TypeMeta: meta("v1", "Secret"), ObjectMeta: objMeta("s", "ns"),
			Data: map[string][]byte{".dockerconfigjson": data}})
		return b
	}
	authOnly, _ := json.Marshal(map[string]any{"auths": map[string]any{"h": map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("user:" + pw))}}})
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"plain", []byte(`{"password":"` + pw + `"}`), true},
		{"base64 at offset 0", []byte(base64.StdEncoding.EncodeToString([]byte(pw))), true},
		{"base64 at offset 1", []byte(base64.StdEncoding.EncodeToString([]byte("x" + pw + "y"))), true},
		{"base64 at offset 2", []byte(base64.StdEncoding.EncodeToString([]byte("xy" + pw))), true},
		{"url base64", []byte(base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe" + pw + "\xff"))), true},
		{"provider's docker-creds Secret", secretJSON(dockerConfigJSON("ghcr.io", "user", pw, "")), true},
		{"Secret with only an auth field (base64 in base64)", secretJSON(authOnly), true},
		{"another password", secretJSON(dockerConfigJSON("ghcr.io", "user", "0f3c9a7be21d44c5ffffffffffffffff", "")), false},
		{"a prefix of it", []byte(pw[:20]), false},
		{"nothing", secretJSON([]byte("{}")), false},
	} {
		if got := newSecretMatcher(pw).in(tc.b, 2); got != tc.want {
			t.Errorf("%s: found %v, want %v", tc.name, got, tc.want)
		}
	}

	// grepStream: the password (plain or in base64) at every offset of a
	// stream read in chunks smaller than it, so across chunk boundaries.
	for _, needle := range []string{pw, base64.StdEncoding.EncodeToString([]byte("a" + pw))} {
		for off := 0; off < 100; off++ {
			b := append(bytes.Repeat([]byte{0}, off), needle...)
			b = append(b, bytes.Repeat([]byte{0}, 50)...)
			if n, hit, err := grepStream(bytes.NewReader(b), newSecretMatcher(pw), 16); err != nil || !hit || n > int64(len(b)) {
				t.Fatalf("grepStream(%q at %d) = %d, %v, %v", needle, off, n, hit, err)
			}
			if _, hit, _ := grepStream(bytes.NewReader(b), newSecretMatcher("ffffffffffffffffffffffff"), 16); hit {
				t.Fatal("grepStream found a secret that is not there")
			}
		}
	}
	// grepFile on a file larger than it reads at once.
	big := make([]byte, 12<<20)
	copy(big[9<<20:], pw)
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := grepFile(p, newSecretMatcher(pw)); err != nil || !hit {
		t.Errorf("grepFile of a 12 MiB file = %v, %v", hit, err)
	}
}
