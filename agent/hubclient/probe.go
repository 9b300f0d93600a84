package hubclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/pullgate/pullgate/pkg/wire"
)

// ErrNotNATS means the NATS URL's address answers, but not as a NATS
// server (typically the hub's HTTP port instead of its NATS port).
var ErrNotNATS = errors.New("not a NATS server")

// maxProbeWait bounds each wait of the probe.
const maxProbeWait = 2 * time.Second

// probeNATS looks, after a failed connect, at each server of natsURL for
// one that is not a NATS server: a NATS server greets every client with
// INFO at once, an HTTP(S) server greets nobody and answers a request with
// "HTTP/". It sends no credentials, and says nothing (nil) when it cannot
// tell: nothing listening, or a server that stays silent (TLS first).
func probeNATS(ctx context.Context, natsURL string, wait time.Duration) error {
	wait = min(wait, maxProbeWait)
	for _, one := range strings.Split(natsURL, ",") {
		addr, ok := natsAddr(one)
		if !ok {
			continue
		}
		if err := probeOne(ctx, addr, wait); err != nil {
			return fmt.Errorf("%s is %w: %w", wire.RedactURL(strings.TrimSpace(one)), ErrNotNATS, err)
		}
	}
	return nil
}

// natsAddr is the host:port nats.go dials for one server URL.
func natsAddr(one string) (string, bool) {
	one = strings.TrimSpace(one)
	if !strings.Contains(one, "://") {
		one = "nats://" + one
	}
	u, err := url.Parse(one)
	if err != nil || u.Hostname() == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = "4222" // nats.go's default
	}
	return net.JoinHostPort(u.Hostname(), port), true
}

func probeOne(ctx context.Context, addr string, wait time.Duration) error {
	d := net.Dialer{Timeout: wait}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil // nothing listening: the connect error says enough
	}
	defer c.Close()
	buf := make([]byte, 64)
	_ = c.SetDeadline(time.Now().Add(wait))
	n, _ := c.Read(buf)
	switch {
	case n > 0 && bytes.HasPrefix(buf[:n], []byte("INFO")):
		return nil
	case n > 0:
		return fmt.Errorf("it greets clients with %q, where a NATS server sends INFO", printable(buf[:n]))
	}
	// Silent: an HTTP server waits for a request.
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\nHost: pullgate-agent-probe\r\n\r\n")); err != nil {
		return nil
	}
	n, _ = c.Read(buf)
	if n > 0 && bytes.HasPrefix(buf[:n], []byte("HTTP/")) {
		return errors.New("it speaks HTTP: is this the hub's HTTP port? Point --nats-url at the hub's NATS address, its --nats-listen (port 4222 by default)")
	}
	return nil
}

// printable keeps what a peer sent short and free of control characters.
func printable(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '.'
		}
		return r
	}, string(b))
}
