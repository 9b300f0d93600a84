package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/netguard"
)

// Finding 2: an admin credential without the private-network allowance
// whose upstream is on loopback is refused at dial time. The pull client
// gets a generic 502 naming neither the address nor the socket error, and
// nothing reaches the internal service.
func TestPrivateUpstreamRefusedAtDial(t *testing.T) {
	up := testupstream.StartInProcess(t)
	up.PushRandomImage(t, "internal/secret-app", "latest", 1, 64)
	port := up.URL[strings.LastIndex(up.URL, ":")+1:]
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct{ name, endpoint string }{
		{"open port", up.URL},
		{"closed port", closedURL},
		{"localhost", "http://localhost:" + port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up.ResetLog()
			f := newFixture(t)
			ws := f.workspace("acme")
			c := f.credential(ws, "internal", upstreamHost, &testupstream.Registry{URL: tc.endpoint}, "anything")
			off := false
			if _, err := f.store.UpdateCredential(t.Context(), ws.Name, c.Name, storeUpdate(&off)); err != nil {
				t.Fatal(err)
			}
			f.install(ws, "web")
			tok := f.token(ws, "web", time.Minute)
			resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/internal/secret-app/manifests/latest", tok)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "UNAVAILABLE") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			for _, leak := range []string{"127.0.0.1", "localhost", port, "refused", "tls", "dial", "special-purpose"} {
				if strings.Contains(body, leak) {
					t.Fatalf("client response names %q: %s", leak, body)
				}
			}
			if n := up.Requests(); n != 0 {
				t.Fatalf("%d requests reached the internal upstream", n)
			}
			if !strings.Contains(f.logs.String(), "allow-private-network") {
				t.Fatalf("the hub log does not say why: %s", f.logs.String())
			}
		})
	}
}

// Finding 3: a token server that echoes the Basic credential in a 400 or
// 500 body: neither the pull client's response nor the hub log holds the
// credential, the body, the endpoint address or the realm URL.
func TestTokenExchangeEchoNotPassedOn(t *testing.T) {
	const pass = "S3CRET-PASS-echo"
	for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var exchanges atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v2/":
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/t",service="x"`, r.Host))
					w.WriteHeader(http.StatusUnauthorized)
				case "/t":
					exchanges.Add(1)
					u, p, _ := r.BasicAuth()
					w.WriteHeader(status)
					fmt.Fprintf(w, "bad login %s:%s (%s)\n", u, p, r.Header.Get("Authorization"))
				}
			}))
			defer srv.Close()
			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, &testupstream.Registry{URL: srv.URL, User: "u"}, pass)
			f.install(ws, "web")
			tok := f.token(ws, "web", time.Minute)
			resp := f.get(http.MethodGet, "/v2/"+upstreamHost+"/org/app/manifests/v1", tok)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadGateway || exchanges.Load() == 0 {
				t.Fatalf("%d %s (%d exchanges)", resp.StatusCode, body, exchanges.Load())
			}
			addr := strings.TrimPrefix(srv.URL, "http://")
			for _, leak := range []string{pass, "bad login", "Basic ", addr, "/t?", "127.0.0.1"} {
				if strings.Contains(body, leak) {
					t.Errorf("client response holds %q: %s", leak, body)
				}
			}
			logs := f.logs.String()
			for _, leak := range []string{pass, "bad login", "Basic "} {
				if strings.Contains(logs, leak) {
					t.Errorf("hub log holds %q: %s", leak, logs)
				}
			}
			if !strings.Contains(logs, fmt.Sprint(status)) {
				t.Errorf("hub log does not give the status: %s", logs)
			}
		})
	}
}

// Finding 14: the CDN client of public upstreams refuses every
// special-purpose address the review found the old check missing.
func TestCDNClientRefusesSpecialAddresses(t *testing.T) {
	c := cdnClient(true)
	for _, host := range []string{"100.100.100.200", "100.64.0.1", "0.1.2.3", "192.0.0.170", "198.18.0.1", "240.0.0.1",
		"[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]", "[::127.0.0.1]", "127.0.0.1", "169.254.169.254"} {
		resp, err := c.Get("https://" + host + "/blob")
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, netguard.ErrSpecialAddress) {
			t.Errorf("%s: %v, want ErrSpecialAddress", host, err)
		}
	}
}

func storeUpdate(allowPrivate *bool) store.CredentialUpdate {
	return store.CredentialUpdate{AllowPrivateNetwork: allowPrivate}
}
