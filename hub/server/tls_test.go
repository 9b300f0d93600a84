package server

import (
	"context"
	"crypto/tls"
	"github.com/pullgate/pullgate/internal/testtls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testtls.SelfSigned(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile,
			Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="https://`+addr+`/auth/token"`) {
		t.Fatalf("https /v2/: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP served on the TLS port")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Half a key pair is a clear error, not a plain-HTTP hub.
	err = Run(context.Background(), Config{DataDir: filepath.Join(dir, "data2"), Listen: "127.0.0.1:0", TLSCert: certFile})
	if err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("cert without key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data2")); err == nil {
		t.Fatal("a refused start created the data dir")
	}
}
