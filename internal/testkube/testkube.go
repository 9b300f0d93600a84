// Package testkube starts a real Kubernetes API server for tests: kine (the
// etcd API on SQLite) and kube-apiserver from .cache/bin (make e2e-k8s
// builds them with e2e/k8s/build-tools.sh), on 127.0.0.1, with a static
// admin token. No kubelet, no controllers: enough for code that talks to
// the API (informers, admission webhooks).
package testkube

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// AdminToken is the bearer token of user admin (group system:masters).
const AdminToken = "admintoken"

// APIServer is a running kube-apiserver.
type APIServer struct {
	URL   string // https://127.0.0.1:PORT (self-signed: skip verification)
	Token string
	Dir   string
	Proc  *e2eproc.Proc
}

// Binaries returns .cache/bin's kine and kube-apiserver, or "" and the
// reason when they are not built.
func Binaries(t testing.TB) (kine, apiserver, missing string) {
	dir := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin")
	kine, apiserver = filepath.Join(dir, "kine"), filepath.Join(dir, "kube-apiserver")
	for _, b := range []string{kine, apiserver} {
		if _, err := os.Stat(b); err != nil {
			return "", "", "no " + filepath.Base(b) + " in .cache/bin (make e2e-k8s builds it with e2e/k8s/build-tools.sh)"
		}
	}
	return kine, apiserver, ""
}

// StartAPIServer starts kine and kube-apiserver, stopped when the test
// ends; extra flags are appended to kube-apiserver's. The test is skipped
// when the binaries are not built, unless PULLGATE_TEST_KUBE=1 (CI sets it
// after building them): then a missing binary fails the test.
func StartAPIServer(t testing.TB, extra ...string) *APIServer {
	t.Helper()
	kineBin, apiBin, missing := Binaries(t)
	if missing != "" {
		if os.Getenv("PULLGATE_TEST_KUBE") == "1" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	d := t.TempDir()
	etcd := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	kine := e2eproc.Start(t, "kine", d, nil, kineBin,
		"--endpoint", "sqlite://"+d+"/kine.db?_journal=WAL&cache=shared", "--listen-address", etcd, "--metrics-bind-address", "0")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write(t, d+"/sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	write(t, d+"/sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	write(t, d+"/tokens.csv", []byte(AdminToken+",admin,admin,\"system:masters\"\n"))
	waitFor(t, 30*time.Second, "kine listening", kine, func() bool {
		c, err := net.DialTimeout("tcp", etcd, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	port := testupstream.FreePort(t)
	s := &APIServer{URL: fmt.Sprintf("https://127.0.0.1:%d", port), Token: AdminToken, Dir: d}
	args := append([]string{"--etcd-servers=http://" + etcd, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port), "--cert-dir=" + d + "/apiserver", "--endpoint-reconciler-type=none",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-account-key-file=" + d + "/sa.pub",
		"--service-account-signing-key-file=" + d + "/sa.key", "--token-auth-file=" + d + "/tokens.csv",
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16"}, extra...)
	s.Proc = e2eproc.Start(t, "kube-apiserver", d, nil, apiBin, args...)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 3*time.Minute, "kube-apiserver ready", s.Proc, func() bool {
		req, _ := http.NewRequest("GET", s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, p *e2eproc.Proc, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if !p.Alive() {
			t.Fatalf("%s: %s exited:\n%s", what, p.Name, e2eproc.Tail(p.Log.String(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s:\n%s", what, limit, e2eproc.Tail(p.Log.String(), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
