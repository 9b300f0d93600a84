package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testkube"
)

func TestAkashUsageErrors(t *testing.T) {
	base := []string{"akash", "--hub", "https://hub.example.com", "--cluster", "provider-1", "--token-file", "/t", "--kubeconfig", "/nonexistent/kubeconfig"}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"akash", "--help"}, nil, 0, "--import-credentials"},
		{[]string{"akash", "--help"}, nil, 0, "failurePolicy Ignore"},
		{[]string{"--help"}, nil, 0, "akash"},
		{[]string{"akash"}, nil, 2, "--hub, --cluster and --token-file are required"},
		{[]string{"akash", "--cluster", "c", "--token-file", "/t"}, map[string]string{EnvHubURL: "http://hub.example.com"}, 2, "clear text"},
		{append(base[:1:1], "--hub", "ftp://x", "--cluster", "c", "--token-file", "/t"), nil, 2, "want https://"},
		{append(base, "--resync", "1s"), nil, 2, "--resync"},
		{append(base, "--webhook-listen", ":8443"), nil, 2, "--webhook-cert"},
		{append(base, "--webhook-cert", "/c", "--webhook-key", "/k"), nil, 2, "need --webhook-listen"},
		{append(base, "--webhook-listen", ":8443", "--webhook-cert", "/c", "--webhook-key", "/k"), nil, 2, "needs --import-credentials"},
		{append(base, "--hub-ca", "/nonexistent/ca.crt"), nil, 2, "hub CA"},
		{append(base, "--log-format", "xml"), nil, 2, "--log-format"},
		{base, nil, 2, "--kubeconfig /nonexistent/kubeconfig"},
		{[]string{"akash", "--hub", "https://h", "--token-file", "/t"}, map[string]string{EnvCluster: "a/b"}, 2, "cluster name"},
	} {
		code, out, errs := run(t, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d containing %q", tc.args, code, out+errs, tc.code, tc.want)
		}
	}
}

// TestAkashRuns runs the subcommand against a real API server (kubeconfig
// path) and a peer on the contract's route until the first full lease set
// arrives, then stops it.
func TestAkashRuns(t *testing.T) {
	api := testkube.StartAPIServer(t)
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+api.URL+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: `+api.Token+`}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("sa-token"), 0o600)
	got := make(chan string, 10)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization")
		io.WriteString(w, `{"leases":0}`)
	}))
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- Main(ctx, []string{"akash", "--hub", hub.URL, "--cluster", "provider-1", "--token-file", tok,
			"--kubeconfig", kc, "--metrics-listen", ""}, io.Discard, &errb, envOf(nil))
	}()
	select {
	case c := <-got:
		if c != "PUT /api/v1/clusters/provider-1/akash/leases Bearer sa-token" {
			t.Errorf("first call %q", c)
		}
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no call to the hub: %s", errb.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
}
