package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for install-token verification, the check every pull
// request passes first. The keys are derived from fixed seeds so that the
// committed corpus holds tokens that verify.

var fuzzNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func fuzzKeyring() (*Keyring, *Keyring) {
	k := NewKeyring(WithClock(func() time.Time { return fuzzNow }))
	k.Add(KeyFromPrivate(ed25519.NewKeyFromSeed([]byte("pullgate-fuzz-signing-key-000001"))), true)
	other := NewKeyring(WithClock(func() time.Time { return fuzzNow }))
	other.Add(KeyFromPrivate(ed25519.NewKeyFromSeed([]byte("pullgate-fuzz-attacker-key-00002"))), true)
	return k, other
}

func mintFuzz(f *testing.F, k *Keyring) string {
	tok, _, err := k.Mint(Claims{Install: "in_1", Workspace: "ws_1", Cluster: "cl_1", Node: "node_1", Repos: []string{"ghcr.io/org/*"}, Generation: 1}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	return tok
}

// canonical reports whether every part of tok is the one strict base64url
// encoding of its bytes.
func canonical(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return false
		}
	}
	return true
}

// FuzzVerify: arbitrary strings never panic, never verify unless signed by
// a key of the ring (the other ring's tokens never verify), and errors
// never carry the token.
func FuzzVerify(f *testing.F) {
	k, other := fuzzKeyring()
	good, foreign := mintFuzz(f, k), mintFuzz(f, other)
	for _, s := range []string{
		good, foreign, "", "a.b.c", "..", strings.Repeat("A", MaxLen+1),
		`eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJwdWxsZ2F0ZSJ9.`,
		strings.Replace(good, ".", "..", 1), good + "=", strings.ToUpper(good),
	} {
		f.Add(s)
	}
	pub := k.signing.Private.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.Verify(tok)
		if err != nil {
			if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error carries the token: %v", err)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			if c.Install != "" || c.Workspace != "" || c.Repos != nil {
				t.Fatalf("claims returned with an error")
			}
			return
		}
		if !canonical(tok) {
			t.Fatalf("a non-canonical token verified: %q", tok)
		}
		last := strings.LastIndexByte(tok, '.')
		sig, _ := base64.RawURLEncoding.DecodeString(tok[last+1:])
		if !ed25519.Verify(pub, []byte(tok[:last]), sig) {
			t.Fatalf("verified a token the key did not sign: %q", tok)
		}
		if c.Issuer != Issuer || c.Install == "" || c.Workspace == "" || !fuzzNow.Before(c.ExpiresAt()) {
			t.Fatalf("verified claims %+v", c)
		}
		if _, err := other.Verify(tok); err == nil {
			t.Fatalf("a token of one ring verified with another: %q", tok)
		}
	})
}

// FuzzVerifyBitFlip: a valid token with any one bit flipped never verifies.
func FuzzVerifyBitFlip(f *testing.F) {
	k, _ := fuzzKeyring()
	good := mintFuzz(f, k)
	for _, pos := range []uint16{0, 1, 20, 36, 37, uint16(len(good) / 2), uint16(len(good) - 2), uint16(len(good) - 1)} {
		for _, bit := range []uint8{0, 1, 5, 7} {
			f.Add(pos, bit)
		}
	}
	f.Fuzz(func(t *testing.T, pos uint16, bit uint8) {
		b := []byte(good)
		i := int(pos) % len(b)
		b[i] ^= 1 << (bit % 8)
		if _, err := k.Verify(string(b)); err == nil {
			t.Fatalf("token with bit %d of byte %d flipped verifies: %q", bit%8, i, b)
		}
	})
}
