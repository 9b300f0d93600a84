package hubclient

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/pkg/wire"
)

// listen serves on a loopback port with serve(conn) per connection.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr().String()
}

// An agent pointed at an address that is not a NATS server (the hub's
// HTTP or HTTPS port, another service) says so, instead of "i/o timeout";
// real NATS servers and silent or closed ports are not misreported.
func TestEnrolNotANATSServer(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", true)
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	webTLS := httptest.NewTLSServer(http.NotFoundHandler())
	defer webTLS.Close()
	ssh := listen(t, func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")); time.Sleep(3 * time.Second) })
	silent := listen(t, func(c net.Conn) { time.Sleep(5 * time.Second) })
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}()
	wrong := wire.JoinTokenPrefix + cl.ID + ".0123456789abcdef0123"
	for _, c := range []struct {
		name, url, token string
		notNATS          []string // what the error says; nil: not ErrNotNATS
	}{
		{"hub HTTP port", "nats://" + strings.TrimPrefix(web.URL, "http://"), cl.JoinToken, []string{"is not a NATS server", "speaks HTTP", "--nats-listen", "4222"}},
		{"hub HTTPS port", "tls://" + strings.TrimPrefix(webTLS.URL, "https://"), cl.JoinToken, []string{"is not a NATS server", "speaks HTTP"}},
		{"another protocol", "nats://" + ssh, cl.JoinToken, []string{"is not a NATS server", `greets clients with "SSH-2.0-OpenSSH_9.6"`}},
		{"silent server", "nats://" + silent, cl.JoinToken, nil},
		{"nothing listening", "nats://" + closed, cl.JoinToken, nil},
		{"NATS refusing the token", hub.URL(), wrong, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Enrol(context.Background(), c.url, c.token, wire.EnrolRequest{}, WithTimeout(500*time.Millisecond))
			if err == nil {
				t.Fatal("enrolled")
			}
			if got := errors.Is(err, ErrNotNATS); got != (c.notNATS != nil) {
				t.Fatalf("ErrNotNATS = %v: %v", got, err)
			}
			for _, w := range c.notNATS {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: does not say %q", err, w)
				}
			}
			t.Log(err)
			if strings.Contains(err.Error(), c.token) {
				t.Error("the join token is in the error")
			}
		})
	}
}

// An enrolled node whose URL points at an HTTP port logs why it cannot
// connect.
func TestDialNotANATSServerLogged(t *testing.T) {
	hub := hubfake.New(t)
	id := enrolled(t, hub, hub.AddCluster("prod", true))
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	logs := &testlog.Buffer{}
	c, err := Dial("nats://"+strings.TrimPrefix(web.URL, "http://"), id, Events{},
		WithTimeout(300*time.Millisecond), WithReconnectWait(50*time.Millisecond, 100*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "is not a NATS server") {
		if time.Now().After(deadline) {
			t.Fatalf("no not-a-NATS-server error logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Count(logs.String(), "is not a NATS server") != 1 {
		t.Errorf("logged more than once:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), id.NodeSecret) {
		t.Error("node secret in the log")
	}
}

// The probe's error names the server without its user info, also when
// the URL has no scheme (nats.go's default nats://) or is one of a list.
func TestProbeNATSErrorRedacted(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	addr := strings.TrimPrefix(web.URL, "http://")
	for _, u := range []string{
		"user:probe-SECRET@" + addr,
		"probe-SECRET@" + addr,
		"nats://user:probe-SECRET@" + addr,
		"nats://127.0.0.1:1, user:probe-SECRET@" + addr,
	} {
		err := probeNATS(context.Background(), u, time.Second)
		if !errors.Is(err, ErrNotNATS) {
			t.Fatalf("probe %q: %v, want ErrNotNATS", u, err)
		}
		if strings.Contains(err.Error(), "probe-SECRET") {
			t.Errorf("probe %q: secret in the error: %v", u, err)
		}
	}
}
