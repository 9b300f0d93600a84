package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func newRing(t testing.TB, now func() time.Time) (*Keyring, Key) {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r := NewKeyring(WithClock(now))
	r.Add(key, true)
	return r, key
}

func TestMintVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	ring, _ := newRing(t, clock)
	in := Claims{Install: "inst_1", Workspace: "ws_1", Repos: []string{"ghcr.io/org/*"}, Generation: 3}
	tok, minted, err := ring.Mint(in, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Install != "inst_1" || got.Generation != 3 || got.Repos[0] != "ghcr.io/org/*" || got.ID != minted.ID {
		t.Fatalf("claims = %+v", got)
	}
	if got.Expiry != now.Add(10*time.Minute).Unix() {
		t.Fatalf("expiry = %d", got.Expiry)
	}

	foreign, _ := newRing(t, clock)
	foreignTok, _, _ := foreign.Mint(in, time.Minute)

	// Same kid, different key: a forged signature under a known key id.
	otherKey, _ := NewKey()
	forged := NewKeyring(WithClock(clock))
	forged.Add(Key{KID: ring.signing.KID, Private: otherKey.Private}, true)
	forgedTok, _, _ := forged.Mint(in, time.Minute)

	parts := strings.Split(tok, ".")
	tamperedClaims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"pullgate","inst":"inst_2","ws":"ws_1","gen":3,"exp":9999999999}`))
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"x"}`))

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"foreign key", foreignTok, ErrUnknownKey},
		{"forged under known kid", forgedTok, ErrSignature},
		{"tampered claims", parts[0] + "." + tamperedClaims + "." + parts[2], ErrSignature},
		{"alg none", noneHeader + "." + parts[1] + ".", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"garbage", "not-a-token", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"huge", strings.Repeat("a", MaxLen+1), ErrMalformed},
		{"bad base64", "!!." + parts[1] + "." + parts[2], ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.Verify(tc.tok)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	now = now.Add(10 * time.Minute)
	if _, err := ring.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: err = %v, want ErrExpired", err)
	}
}

func TestRotation(t *testing.T) {
	ring, _ := newRing(t, time.Now)
	old, _, _ := ring.Mint(Claims{Install: "i", Workspace: "w"}, time.Minute)
	k2, _ := NewKey()
	ring.Add(k2, true)
	fresh, _, _ := ring.Mint(Claims{Install: "i", Workspace: "w"}, time.Minute)
	for _, tok := range []string{old, fresh} {
		if _, err := ring.Verify(tok); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}
	if !strings.Contains(mustHeader(t, fresh), k2.KID) {
		t.Fatal("new token not signed with the new key")
	}
}

func mustHeader(t *testing.T, tok string) string {
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMintRefusesBadInput(t *testing.T) {
	if _, _, err := NewKeyring().Mint(Claims{}, time.Minute); err == nil {
		t.Fatal("minted without a key")
	}
	ring, _ := newRing(t, time.Now)
	if _, _, err := ring.Mint(Claims{Install: "i", Workspace: "w"}, 0); err == nil {
		t.Fatal("minted with zero ttl")
	}
}

func BenchmarkMint(b *testing.B) {
	ring, _ := newRing(b, time.Now)
	c := Claims{Install: "inst_0123456789abcdef", Workspace: "ws_0123456789abcdef", Generation: 1}
	for b.Loop() {
		if _, _, err := ring.Mint(c, 10*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	ring, _ := newRing(b, time.Now)
	tok, _, _ := ring.Mint(Claims{Install: "inst_0123456789abcdef", Workspace: "ws_0123456789abcdef", Generation: 1}, 10*time.Minute)
	for b.Loop() {
		if _, err := ring.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
