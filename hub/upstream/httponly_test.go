package upstream

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
)

// tlsSniffer counts connections that open with a TLS record (a ClientHello
// sent to a plain-HTTP server).
type tlsSniffer struct {
	net.Listener
	tls atomic.Int64
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (l *tlsSniffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	if b, err := r.Peek(1); err == nil && b[0] == 0x16 {
		l.tls.Add(1)
	}
	return peekedConn{c, r}, nil
}

// An http:// endpoint is talked to in plain HTTP only: no TLS handshake
// is tried first, and a failure names the HTTP attempt alone.
func TestExplicitHTTPEndpointNeverTriesHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	sniff := &tlsSniffer{Listener: srv.Listener}
	srv.Listener = sniff
	srv.Start()
	defer srv.Close()
	pool := NewPool()
	c := store.Credential{ID: "cred_http", Version: 1, Host: "registry.test", Endpoint: srv.URL, Kind: "basic", Username: "alice", AllowPrivateNetwork: true}
	res := pool.Check(context.Background(), c, &authn.Basic{Username: "alice", Password: "pw-SECRET"}, "")
	if !res.Reachable || res.AuthScheme != "basic" {
		t.Fatalf("Check = %+v", res)
	}
	if n := sniff.tls.Load(); n != 0 {
		t.Errorf("%d TLS handshakes sent to the http:// endpoint", n)
	}

	// Nothing listening: the error is about http:// alone.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c.Endpoint = "http://" + addr
	res = pool.Check(context.Background(), c, authn.Anonymous, "")
	if res.Reachable || !strings.Contains(res.Error, "http://"+addr+"/v2/") || strings.Contains(res.Error, "https") {
		t.Errorf("unreachable http:// endpoint: %q", res.Error)
	}
}
