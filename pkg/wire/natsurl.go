package wire

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckNATSURL checks a NATS server URL (or a comma-separated list, as
// nats.go takes them) before anything is sent to it. tls:// is always
// fine; nats:// (plain text) only to a loopback host unless insecure is
// set: join tokens, node secrets, service-account tokens and install
// tokens cross this connection.
func CheckNATSURL(raw string, insecure bool) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("NATS URL is empty")
	}
	for _, one := range strings.Split(raw, ",") {
		one = strings.TrimSpace(one)
		if !strings.Contains(one, "://") {
			one = "nats://" + one // nats.go's default scheme
		}
		u, err := url.Parse(one)
		if err != nil || u.Hostname() == "" {
			return fmt.Errorf("NATS URL %q: want tls://HOST:PORT or nats://HOST:PORT", RedactURL(one))
		}
		switch strings.ToLower(u.Scheme) {
		case "tls":
		case "nats":
			if !insecure && !IsLoopbackHost(u.Hostname()) {
				return fmt.Errorf("NATS URL %s is plain text to a non-loopback host: use tls://%s (with --nats-ca if its certificate is not publicly trusted), or --insecure-nats to send credentials in clear text",
					RedactURL(one), u.Host)
			}
		case "http", "https":
			return fmt.Errorf("NATS URL %s is not a NATS URL: NATS speaks its own protocol, at tls://HOST:PORT or nats://HOST:PORT (the hub's --nats-listen address, port 4222 by default), not at the hub's HTTP address",
				RedactURL(one))
		default:
			return fmt.Errorf("NATS URL %s: scheme %q: want tls:// or nats://", RedactURL(one), u.Scheme)
		}
	}
	return nil
}

// IsLoopbackHost reports whether host (a name or an IP literal, without
// port) stays on this machine: "localhost" or a loopback address.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedactURL drops user info from a NATS URL, or a comma-separated list of
// them, for logs and errors. A URL without a scheme is read as nats.go
// reads it, nats:// (user:pw@host would otherwise parse as scheme "user").
func RedactURL(u string) string {
	if strings.Contains(u, ",") {
		parts := strings.Split(u, ",")
		for i, one := range parts {
			parts[i] = RedactURL(strings.TrimSpace(one))
		}
		return strings.Join(parts, ",")
	}
	s, schemeless := u, !strings.Contains(u, "://")
	if schemeless {
		s = "nats://" + s
	}
	p, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if p.User == nil {
		return u
	}
	p.User = url.User("REDACTED")
	if schemeless {
		return strings.TrimPrefix(p.String(), "nats://")
	}
	return p.String()
}
