package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrForeignRealm means an upstream asked for its token to be fetched from
// a host it is not known to use. Credentials are never sent there.
var ErrForeignRealm = errors.New("token realm is not the upstream's own")

// knownRealms are the token hosts of public registries whose realm is not
// the registry host itself. Everything else must use its own host, or a
// host the operator named for the credential (--realm-host): registrable
// domains are no safe default, since SaaS registries (*.jfrog.io,
// *.goharbor.io, *.scw.cloud, *.azurecr.io) give every customer a sibling
// subdomain.
var knownRealms = map[string][]string{
	"registry-1.docker.io": {"auth.docker.io"},
	"index.docker.io":      {"auth.docker.io"},
	"docker.io":            {"auth.docker.io"},
	"registry.gitlab.com":  {"gitlab.com"},
	"registry.redhat.io":   {"sso.redhat.com"},
	"nvcr.io":              {"authn.nvidia.com"},
}

// CheckRealm accepts a token realm only on the upstream's own host, a
// known token host of that upstream (auth.docker.io for Docker Hub), or one
// of extra (the operator's per-credential realm hosts, "host" or
// "host:port"). It must be HTTPS unless plainHTTP (the credential allows
// plain HTTP) and carry no user info.
func CheckRealm(realm, registryAddr string, plainHTTP bool, extra []string) (*url.URL, error) {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: realm %q is not an absolute URL", ErrForeignRealm, realm)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !plainHTTP {
			return nil, fmt.Errorf("%w: realm %q is plain HTTP for an HTTPS upstream", ErrForeignRealm, realm)
		}
	default:
		return nil, fmt.Errorf("%w: realm scheme %q", ErrForeignRealm, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: realm %q carries user info", ErrForeignRealm, u.Redacted())
	}
	regHost := strings.ToLower(hostname(registryAddr))
	realmHost := strings.ToLower(u.Hostname())
	if realmHost == regHost {
		return u, nil
	}
	for _, h := range knownRealms[regHost] {
		if realmHost == h {
			return u, nil
		}
	}
	for _, h := range extra {
		h = strings.ToLower(h)
		if h == realmHost || h == strings.ToLower(u.Host) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w: upstream %s sent realm host %s (an operator can trust it with --realm-host)", ErrForeignRealm, registryAddr, u.Host)
}

// ValidRealmHost checks an operator-given realm host: a DNS name or IP,
// optionally with a port, nothing else.
func ValidRealmHost(h string) error {
	if h == "" || strings.ContainsAny(h, "/@?#*, \t") {
		return fmt.Errorf("realm host %q: want host or host:port", h)
	}
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if port == "" {
			return fmt.Errorf("realm host %q: empty port", h)
		}
		host = hh
	}
	if host == "" {
		return fmt.Errorf("realm host %q: want host or host:port", h)
	}
	return nil
}

func hostname(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
