// Package netguard classifies IP addresses against the IANA special-purpose
// registries and refuses, at dial time, connections to addresses that are
// not globally reachable unicast. The hub dials upstreams named by tenants
// (SDL imports) and follows upstream redirects: without this check either
// could reach the hub's own network (loopback, RFC 1918, cloud metadata).
//
// The check runs on the address actually connected to (net.Dialer.Control),
// after name resolution, so a name that resolves, or later re-resolves, to
// a special-purpose address is refused too (DNS rebinding).
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// special lists the IANA IPv4 and IPv6 special-purpose ranges that are not
// globally reachable, plus multicast and the reserved 240/4. Ranges that
// embed an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped/compatible) are
// handled in Special by unwrapping, and are listed here as well so that an
// unwrapped public address is still refused unless stated otherwise.
var special = prefixes(
	// IPv4 (RFC 6890 and the IANA IPv4 special-purpose registry).
	"0.0.0.0/8",       // "this network"
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // shared address space (CGNAT; Alibaba metadata 100.100.100.200)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (cloud metadata 169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"192.31.196.0/24", // AS112-v4
	"192.52.193.0/24", // AMT
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // private
	"192.175.48.0/24", // direct delegation AS112
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, including 255.255.255.255 broadcast
	// IPv6 (IANA IPv6 special-purpose registry).
	"::/128",         // unspecified
	"::1/128",        // loopback
	"::/96",          // IPv4-compatible (deprecated)
	"::ffff:0:0/96",  // IPv4-mapped
	"64:ff9b::/96",   // NAT64 well-known prefix
	"64:ff9b:1::/48", // local-use NAT64
	"100::/64",       // discard-only
	"2001::/23",      // IETF protocol assignments (Teredo 2001::/32, ORCHID, benchmarking 2001:2::/48)
	"2001:db8::/32",  // documentation
	"2002::/16",      // 6to4
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // SRv6 SIDs
	"fc00::/7",       // unique local
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

// Prefixes that carry an IPv4 address (see Embedded).
var (
	compat     = netip.MustParsePrefix("::/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Special reports whether a is not a globally reachable unicast address: an
// invalid address, one in a special-purpose range, or an IPv6 address that
// embeds a special-purpose IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo).
func Special(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.WithZone("")
	if a.Is4In6() {
		return true // the hub dials IPv4 as IPv4; a mapped form is someone's trick
	}
	for _, p := range special {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Embedded returns the IPv4 address an IPv6 address carries by one of the
// standard translation or tunnelling schemes, if any: IPv4-mapped and
// -compatible (::ffff:a.b.c.d, ::a.b.c.d), NAT64 (64:ff9b::/96 and the
// local-use 64:ff9b:1::/48, RFC 6052 /96 form), 6to4 (2002:AABB:CCDD::/48)
// and Teredo (2001:0::/32, client address inverted in the last 32 bits).
// Special already refuses all of these prefixes; Embedded lets callers
// (and error messages) say what was hidden inside.
func Embedded(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	a = a.WithZone("")
	b := a.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte{x[0], x[1], x[2], x[3]}) }
	switch {
	case a.Is4In6():
		return a.Unmap(), true
	case compat.Contains(a), nat64.Contains(a), nat64Local.Contains(a):
		return v4(b[12:]), true
	case sixToFour.Contains(a):
		return v4(b[2:6]), true
	case teredo.Contains(a):
		return v4([]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

// ErrSpecialAddress is wrapped by every refusal of this package.
var ErrSpecialAddress = errors.New("special-purpose address (loopback, private, link-local, ...) refused")

// Error is a refused dial: which address, and what it embedded if anything.
type Error struct{ Addr netip.Addr }

func (e *Error) Error() string {
	if v4, ok := Embedded(e.Addr); ok {
		return fmt.Sprintf("%s (embedding %s): %v", e.Addr, v4, ErrSpecialAddress)
	}
	return fmt.Sprintf("%s: %v", e.Addr, ErrSpecialAddress)
}

func (e *Error) Unwrap() error { return ErrSpecialAddress }

// Check refuses a "host:port" or bare IP address that is Special.
func Check(address string) error {
	host := address
	if h, _, err := net.SplitHostPort(address); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %q: not an IP address: %w", address, ErrSpecialAddress)
	}
	if Special(a) {
		return &Error{Addr: a}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses special-purpose
// addresses. It runs after resolution, on every address tried.
func Control(_, address string, _ syscall.RawConn) error { return Check(address) }

// Dialer returns a dialer for upstream connections. With allowPrivate the
// address check is off (an operator allowed this upstream a private
// endpoint). resolver may be nil (the system's).
func Dialer(allowPrivate bool, resolver *net.Resolver) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver}
	if !allowPrivate {
		d.Control = Control
	}
	return d
}
