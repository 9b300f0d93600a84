package agentclient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/pkg/wire"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
		err       string
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", ""},
		{"to eof", "HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"x\"}", 404, `{"error":"x"}`, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 0, "", "Transfer-Encoding"},
		{"bad status", "HTTP/1.1 abc\r\n\r\n", 0, "", "malformed answer status"},
		{"not http", "SSH-2.0\r\n\r\n", 0, "", "status line"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", 0, "", "read answer body"},
		{"huge header", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", 0, "", "too large"},
		{"huge body", "HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n", 0, "", "too large"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", "Content-Length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body, err := readResponse(bufio.NewReader(strings.NewReader(tc.raw)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || st != tc.status || string(body) != tc.body {
				t.Fatalf("%d %q %v", st, body, err)
			}
		})
	}
}

// serve answers one connection with raw.
func serve(t *testing.T, raw string, delay time.Duration) string {
	sock := filepath.Join(t.TempDir(), "a.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		time.Sleep(delay)
		c.Write([]byte(raw))
	}()
	return sock
}

func TestCredentialsErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Credentials(ctx, filepath.Join(t.TempDir(), "none.sock"), wire.CredentialsRequest{Image: "a/b"}); err == nil || !strings.Contains(err.Error(), "is pullgate-agent running?") {
		t.Fatalf("no agent: %v", err)
	}
	sock := serve(t, "HTTP/1.1 404 Not Found\r\nContent-Length: 43\r\n\r\n{\"error\":\"no install serves x\",\"code\":\"nf\"}", 0)
	_, err := Credentials(ctx, sock, wire.CredentialsRequest{Image: "a/b"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no install serves x") {
		t.Fatalf("404: %v", err)
	}
	sock = serve(t, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"password\":\"tok123", 0)
	if _, err := Credentials(ctx, sock, wire.CredentialsRequest{Image: "a/b"}); err == nil || strings.Contains(err.Error(), "tok123") {
		t.Fatalf("malformed 200 must fail without quoting the body: %v", err)
	}
	sock = serve(t, "HTTP/1.1 200 OK\r\n\r\n{}", time.Second)
	ctx2, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Credentials(ctx2, sock, wire.CredentialsRequest{Image: "a/b"}); err == nil || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("timeout not honoured: %v after %s", err, time.Since(start))
	}
}
