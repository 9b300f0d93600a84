package upstream

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for what an upstream registry controls: the token realm of
// its Bearer challenge (where the hub sends the credential) and the
// lifetime of the token it hands back.

// FuzzCheckRealm: a realm is accepted only over HTTPS (plain HTTP only for
// an insecure upstream), without user info, on the upstream's own host, a
// known token host of that upstream, or the operator's realm host.
func FuzzCheckRealm(f *testing.F) {
	for _, s := range [][2]string{
		{"https://auth.docker.io/token", "registry-1.docker.io"},
		{"https://ghcr.io/token", "ghcr.io"},
		{"https://gitlab.com/jwt/auth", "registry.gitlab.com"},
		{"http://ghcr.io/token", "ghcr.io"},
		{"https://evil.example/token", "ghcr.io"},
		{"https://a.azurecr.io/oauth2/token", "b.azurecr.io"},
		{"https://127.0.0.1:5000/token", "127.0.0.1:5000"},
		{"https://169.254.169.254/latest", "127.0.0.1:5000"},
		{"https://user:pw@ghcr.io/token", "ghcr.io"},
		{"//ghcr.io/token", "ghcr.io"},
		{"https://GHCR.io./token", "ghcr.io"},
		{"https://[::1]:5000/token", "[::1]:5000"},
		{"https://ghcr.io%2eevil.example/token", "ghcr.io"},
	} {
		f.Add(s[0], s[1], false, "")
	}
	f.Add("https://auth.corp.example/token", "registry.corp.example", false, "auth.corp.example")
	f.Add("https://evil.jfrog.io/token", "acme.jfrog.io", false, "")
	f.Fuzz(func(t *testing.T, realm, registry string, insecure bool, extra string) {
		var extras []string
		if extra != "" {
			extras = []string{extra}
		}
		u, err := CheckRealm(realm, registry, insecure, extras)
		if err != nil {
			if strings.Contains(realm, "@") {
				if ru, perr := url.Parse(realm); perr == nil && ru.User != nil {
					if p, ok := ru.User.Password(); ok && len(p) >= 4 && strings.Contains(err.Error(), p) {
						t.Fatalf("error quotes the realm's password: %v", err)
					}
				}
			}
			return
		}
		if u.Scheme != "https" && !(insecure && u.Scheme == "http") {
			t.Fatalf("realm %q accepted with scheme %q (insecure=%v)", realm, u.Scheme, insecure)
		}
		if u.User != nil || u.Host == "" {
			t.Fatalf("realm %q accepted: %+v", realm, u)
		}
		rh, gh := strings.ToLower(u.Hostname()), strings.ToLower(hostname(registry))
		if rh == gh {
			return
		}
		for _, h := range knownRealms[gh] {
			if rh == h {
				return
			}
		}
		if extra != "" && (strings.EqualFold(extra, rh) || strings.EqualFold(extra, u.Host)) {
			return
		}
		t.Fatalf("realm host %q accepted for registry %q (realm host %q)", rh, registry, extra)
	})
}

// FuzzJWTLifetime: whatever an upstream sends as a token, the lifetime
// read from it is between 0 and an hour.
func FuzzJWTLifetime(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"x." + enc(`{"exp":1796040000}`) + ".y", "x." + enc(`{"exp":-9223372036854775808}`) + ".y",
		"x." + enc(`{"exp":9223372036854775807}`) + ".y", "x." + enc(`{"exp":1e309}`) + ".y",
		"x." + enc(`{"exp":"1796040000"}`) + ".y", "opaque-token", "a.b.c.d", "x.=.y",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, tok string) {
		if n := jwtLifetime(tok, now); n < 0 || n > 3600 {
			t.Fatalf("jwtLifetime(%q) = %d", tok, n)
		}
	})
}
