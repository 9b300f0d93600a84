package jwks

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keys = `{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}`

func TestCheck(t *testing.T) {
	for in, ok := range map[string]bool{
		keys:                           true,
		`{"keys":[]}`:                  false,
		`{"keys":`:                     false,
		`[]`:                           false,
		`{"other":1}`:                  false,
		strings.Repeat(" ", MaxSize+1): false,
	} {
		if _, err := Check([]byte(in)); (err == nil) != ok {
			t.Errorf("Check(%.20q) = %v", in, err)
		}
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(p, []byte(keys), 0o600)
	got, err := File(p)(context.Background())
	if err != nil || string(got) != keys {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := File(p + ".missing")(context.Background()); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestInCluster(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pod-sa-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case Path:
			w.Write([]byte(keys))
		case DiscoveryPath:
			w.Write([]byte(`{"issuer":"https://kubernetes.default.svc.cluster.local","jwks_uri":"https://x/openid/v1/jwks"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte("pod-sa-token\n"), 0o600)

	if _, _, err := InCluster(func(string) string { return "" }); err != ErrNotInCluster {
		t.Fatalf("outside a pod: %v", err)
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "https://"), ":")
	env := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
	src, iss, err := InCluster(func(k string) string { return env[k] }, WithServiceAccountDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	got, err := src(context.Background())
	if err != nil || string(got) != keys {
		t.Fatalf("%s %v", got, err)
	}
	if got, err := iss(context.Background()); err != nil || got != "https://kubernetes.default.svc.cluster.local" {
		t.Fatalf("issuer %q %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "token"), []byte("rotated-wrong"), 0o600)
	if _, err := src(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused: %v", err)
	}
	// Without a usable CA nothing is fetched.
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o600)
	if _, _, err := InCluster(func(k string) string { return env[k] }, WithServiceAccountDir(dir)); err == nil {
		t.Fatal("unusable CA accepted")
	}
}
