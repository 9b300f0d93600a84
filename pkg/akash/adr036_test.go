package akash

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Public test keys (research notes of issue 15): the first is a devnet key
// whose Keplr signature is known; the second stands for another account.
const (
	tenantKeyHex   = "a267fb03b3e6dc381550ea0257ace31433698f16248ba111dfb75550364d31fe"
	tenantPubB64   = "A/MdHVpitzHNSdD1Zw3kY+L5PEIPyd9l6sD5i4aIfXp9"
	providerKeyHex = "ef1450bdc18396f2254f52d8c525c0d933a8f146ec2a681eaf319f5899f2f60d"
	providerPubB64 = "Ak9iJuH5l5/XdmS6U+ojbutXnGzBnQf++HVOfKanVEc+"

	// The Keplr vector: signArbitrary by the tenant key of its cosmos
	// address as data, signer the cosmos address (Keplr-produced,
	// reproduced with decred's RFC 6979 Sign).
	keplrSigner = "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud"
	keplrSigB64 = "vb78/y129cOiWyQkeFF8wCKZsOyzjpILnpEVZ72o5YUhEOmQZzVPcbUqWPLR7aZQ20j6vnYhIuCQN0HEG3igFg=="
	keplrDocSum = "a39b65a338e0774a452bb0741c33941eb45d128e4652febd2efad83c41c55f40"

	// The akash-signer vector: a pullgate login message.
	loginMessage = "pullgate login\nhub: https://hub.example\naddress: akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h\nnonce: AAAAAAAAAAAAAAAAAAAAAA\nexpires: 2026-12-01T02:00:00Z"
	loginSigB64  = "KI7Z3syyD/Y3QQ6BiP4UTzoKCo03wCWdWi+8pQVbCEUz8sl6AKDPNkF7yNhbv3f6LSjTjvxC5tSSwmUwyEG16w=="
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignBytes(t *testing.T) {
	got := string(SignBytes(keplrSigner, []byte(keplrSigner)))
	want := `{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"` +
		base64.StdEncoding.EncodeToString([]byte(keplrSigner)) + `","signer":"` + keplrSigner + `"}}],"sequence":"0"}`
	if got != want {
		t.Fatalf("SignBytes =\n%s\nwant\n%s", got, want)
	}
	if sum := sha256.Sum256([]byte(got)); hex.EncodeToString(sum[:]) != keplrDocSum {
		t.Fatalf("sha256(sign doc) = %x, want %s", sum, keplrDocSum)
	}
}

// The Keplr vector checks the signature arithmetic against a real wallet;
// its signer has the cosmos prefix, so it goes through verifySignature.
func TestKeplrVector(t *testing.T) {
	if err := verifySignature(SignBytes(keplrSigner, []byte(keplrSigner)), b64(t, tenantPubB64), b64(t, keplrSigB64)); err != nil {
		t.Fatalf("Keplr signature refused: %v", err)
	}
	addr, err := AddressOf(b64(t, tenantPubB64))
	if err != nil || addr != tenantAddr {
		t.Fatalf("AddressOf = %s, %v", addr, err)
	}
}

func TestVerifyADR036(t *testing.T) {
	pub, sig := b64(t, tenantPubB64), b64(t, loginSigB64)
	if err := VerifyADR036(tenantAddr, []byte(loginMessage), pub, sig); err != nil {
		t.Fatalf("valid login signature refused: %v", err)
	}

	// s -> N-s: the same signature with high S (decred's Verify accepts it).
	var s secp256k1.ModNScalar
	s.SetByteSlice(sig[32:])
	s.Negate()
	high := append([]byte(nil), sig...)
	s.PutBytesUnchecked(high[32:])
	// The other key's signature over the same message for the tenant's
	// address: a valid signature, by the wrong key.
	otherPub, otherSig, err := signAs(t, providerKeyHex, tenantAddr, []byte(loginMessage))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return c
	}
	n := make([]byte, 32) // the group order N: r or s = N overflows
	secp256k1.Params().N.FillBytes(n)

	for _, tc := range []struct {
		name    string
		addr    string
		data    string
		pub     []byte
		sig     []byte
		wantErr string
	}{
		{"flipped signature bit", tenantAddr, loginMessage, pub, flip(sig, 10), "does not match"},
		{"flipped s bit", tenantAddr, loginMessage, pub, flip(sig, 63), "does not match"},
		{"other message", tenantAddr, strings.Replace(loginMessage, "hub.example", "hub.evil", 1), pub, sig, "does not match"},
		{"high S", tenantAddr, loginMessage, pub, high, "high-S"},
		{"other key claims the address", tenantAddr, loginMessage, otherPub, otherSig, "not of " + tenantAddr},
		{"wrong address", providerAddr, loginMessage, pub, sig, "not of " + providerAddr},
		{"other key, its own address, tenant's signature", providerAddr, loginMessage, b64(t, providerPubB64), sig, "does not match"},
		{"truncated signature", tenantAddr, loginMessage, pub, sig[:63], "63 bytes"},
		{"long signature", tenantAddr, loginMessage, pub, append(append([]byte(nil), sig...), 0), "65 bytes"},
		{"truncated key", tenantAddr, loginMessage, pub[:32], sig, "32 bytes"},
		{"uncompressed key prefix", tenantAddr, loginMessage, append([]byte{0x04}, pub[1:]...), sig, "not of"},
		{"zero r", tenantAddr, loginMessage, pub, append(make([]byte, 32), sig[32:]...), "r is zero"},
		{"zero s", tenantAddr, loginMessage, pub, append(append([]byte(nil), sig[:32]...), make([]byte, 32)...), "s is zero"},
		{"r = N", tenantAddr, loginMessage, pub, append(append([]byte(nil), n...), sig[32:]...), "r is zero or not below"},
		{"s = N", tenantAddr, loginMessage, pub, append(append([]byte(nil), sig[:32]...), n...), "s is zero or not below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyADR036(tc.addr, []byte(tc.data), tc.pub, tc.sig)
			if err == nil || !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("VerifyADR036: %v, want ErrBadSignature containing %q", err, tc.wantErr)
			}
		})
	}
	if err := VerifyADR036("cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud", []byte(loginMessage), pub, sig); err == nil {
		t.Fatal("a cosmos address was accepted")
	}
}

// signAs signs the sign doc of address with a key that need not be
// address's, as an attacker would (Sign refuses that).
func signAs(t testing.TB, keyHex, address string, data []byte) ([]byte, []byte, error) {
	t.Helper()
	key := secp256k1.PrivKeyFromBytes(unhex(t, keyHex))
	digest := sha256.Sum256(SignBytes(address, data))
	sig := ecdsa.Sign(key, digest[:])
	r, s := sig.R(), sig.S()
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return key.PubKey().SerializeCompressed(), out, nil
}

func TestSign(t *testing.T) {
	// Sign reproduces the wallet's signature byte for byte (RFC 6979).
	pub, sig, err := Sign(unhex(t, tenantKeyHex), tenantAddr, []byte(loginMessage))
	if err != nil {
		t.Fatal(err)
	}
	if base64.StdEncoding.EncodeToString(pub) != tenantPubB64 || base64.StdEncoding.EncodeToString(sig) != loginSigB64 {
		t.Fatalf("Sign = %s %s", base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(sig))
	}
	if _, _, err := Sign(unhex(t, providerKeyHex), tenantAddr, []byte(loginMessage)); err == nil || !strings.Contains(err.Error(), "not of "+tenantAddr) {
		t.Fatalf("Sign with another account's key: %v", err)
	}
	for _, bad := range [][]byte{make([]byte, 32), unhex(t, tenantKeyHex)[:31]} {
		if _, _, err := Sign(bad, tenantAddr, nil); err == nil {
			t.Fatalf("Sign with key %x succeeded", bad)
		}
	}
	// Fresh keys: always low S, always verifies.
	for i := 0; i < 20; i++ {
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := AddressOf(k.PubKey().SerializeCompressed())
		priv := k.Serialize()
		pub, sig, err := Sign(priv, addr, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyADR036(addr, []byte{byte(i)}, pub, sig); err != nil {
			t.Fatalf("fresh key %d: %v", i, err)
		}
	}
}
