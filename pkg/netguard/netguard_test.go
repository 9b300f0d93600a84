package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testdns"
)

func TestSpecial(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		special bool
	}{
		// Every address of the review's finding 14, all classified as
		// public by the old check.
		{"100.100.100.200", true}, // Alibaba metadata (CGNAT range)
		{"100.64.0.1", true},      // CGNAT, Tailscale
		{"0.1.2.3", true},
		{"192.0.0.170", true},
		{"198.18.0.1", true},
		{"240.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", true},  // 6to4 of 169.254.169.254
		{"::127.0.0.1", true},        // IPv4-compatible loopback
		// The ranges the old check did cover.
		{"127.0.0.1", true}, {"127.1.2.3", true}, {"10.0.0.1", true}, {"172.16.5.4", true}, {"172.31.255.255", true},
		{"192.168.1.1", true}, {"169.254.169.254", true}, {"0.0.0.0", true}, {"255.255.255.255", true},
		{"224.0.0.1", true}, {"239.255.255.250", true},
		{"::", true}, {"::1", true}, {"fe80::1", true}, {"fe80::1%eth0", true}, {"fd00::1", true}, {"fc00::1", true},
		{"ff02::1", true}, {"::ffff:127.0.0.1", true}, {"::ffff:8.8.8.8", true},
		// The rest of the special-purpose registries.
		{"192.0.2.10", true}, {"198.51.100.7", true}, {"203.0.113.9", true}, {"192.88.99.1", true},
		{"64:ff9b:1::a00:1", true}, {"2001:db8::1", true}, {"2001::1", true}, {"2001:2::1", true},
		{"100::1", true}, {"fec0::1", true}, {"3fff::1", true},
		// Public addresses stay public.
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"140.82.112.34", false}, {"100.128.0.1", false},
		{"172.32.0.1", false}, {"198.20.0.1", false}, {"223.255.255.255", false},
		{"2606:4700:4700::1111", false}, {"2a00:1450:4001:80b::200e", false}, {"2001:4860:4860::8888", false},
	} {
		a, err := netip.ParseAddr(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := Special(a); got != tc.special {
			t.Errorf("Special(%s) = %v, want %v", tc.addr, got, tc.special)
		}
	}
	if !Special(netip.Addr{}) {
		t.Error("the zero Addr is not special")
	}
}

func TestEmbedded(t *testing.T) {
	for in, want := range map[string]string{
		"64:ff9b::a9fe:a9fe":                   "169.254.169.254",
		"64:ff9b:1::7f00:1":                    "127.0.0.1",
		"2002:a9fe:a9fe::1":                    "169.254.169.254",
		"::127.0.0.1":                          "127.0.0.1",
		"::ffff:10.1.2.3":                      "10.1.2.3",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": "192.0.2.45", // RFC 4380 example
	} {
		got, ok := Embedded(netip.MustParseAddr(in))
		if !ok || got.String() != want {
			t.Errorf("Embedded(%s) = %v, %v; want %s", in, got, ok, want)
		}
	}
	if _, ok := Embedded(netip.MustParseAddr("2606:4700::1")); ok {
		t.Error("plain IPv6 has an embedded address")
	}
	err := Check("[64:ff9b::a9fe:a9fe]:443")
	if !errors.Is(err, ErrSpecialAddress) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Fatalf("Check = %v", err)
	}
}

func TestCheck(t *testing.T) {
	for addr, ok := range map[string]bool{
		"8.8.8.8:443": true, "[2606:4700:4700::1111]:443": true,
		"127.0.0.1:5000": false, "[::1]:443": false, "10.0.0.1": false, "localhost:443": false, "": false,
	} {
		if err := Check(addr); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// A name that resolves to loopback is refused on the address actually
// dialled, and nothing reaches the listener; with allowPrivate it connects.
func TestDialerRefusesRebinding(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	res := testdns.Resolver(t, map[string][]netip.Addr{"registry.example.com": {netip.MustParseAddr("127.0.0.1")}})
	addr := net.JoinHostPort("registry.example.com", port)

	_, err := Dialer(false, res).DialContext(context.Background(), "tcp", addr)
	if !errors.Is(err, ErrSpecialAddress) {
		t.Fatalf("dial of a name resolving to loopback: %v, want ErrSpecialAddress", err)
	}
	c, err := Dialer(true, res).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("allowed private dial: %v", err)
	}
	c.Close()
	if hits != 0 {
		t.Fatalf("%d requests reached the server", hits)
	}
}
