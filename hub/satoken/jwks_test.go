package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestValidateJWKS(t *testing.T) {
	f := keys()
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A 1024-bit modulus; JWK parsing does not need it to be a real key.
	weakN := make([]byte, 128)
	if _, err := rand.Read(weakN); err != nil {
		t.Fatal(err)
	}
	weakN[0] |= 0x80
	weakRSA := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"weak","use":"sig","alg":"RS256","n":%q,"e":"AQAB"}]}`, b64(weakN))

	rsaPub := pubJWK(&f.rsa.PublicKey, "rsa-1", jose.RS256)
	rsaJSON := string(mustJSON(t, rsaPub))
	// withMember returns the RSA public JWK with one member added or replaced.
	withMember := func(k, v string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(rsaJSON), &m); err != nil {
			t.Fatal(err)
		}
		m[k] = json.RawMessage(v)
		return `{"keys":[` + string(mustJSON(t, m)) + `]}`
	}

	tests := []struct {
		name    string
		jwks    string
		wantErr string // "" means valid
	}{
		{name: "kube-apiserver style RSA set", jwks: string(jwksOf(t, rsaPub))},
		{name: "RSA, EC P-256 and Ed25519", jwks: string(clusterJWKS(t))},
		{name: "EC P-384", jwks: string(jwksOf(t, pubJWK(mustP384(t), "ec-384", jose.ES384)))},
		{name: "no alg, no use", jwks: string(jwksOf(t, jose.JSONWebKey{Key: &f.rsa.PublicKey, KeyID: "rsa-1"}))},
		{name: "single key without kid", jwks: string(jwksOf(t, jose.JSONWebKey{Key: &f.rsa.PublicKey}))},
		{name: "key_ops verify", jwks: withMember("key_ops", `["verify"]`)},

		{name: "private RSA key", jwks: string(jwksOf(t, jose.JSONWebKey{Key: f.rsa, KeyID: "rsa-1"})), wantErr: `private key material (member "d")`},
		{name: "private EC key", jwks: string(jwksOf(t, jose.JSONWebKey{Key: f.ec, KeyID: "ec-1"})), wantErr: "private key material"},
		{name: "private Ed25519 key", jwks: string(jwksOf(t, jose.JSONWebKey{Key: f.ed, KeyID: "ed-1"})), wantErr: "private key material"},
		{name: "private key among public ones", jwks: string(jwksOf(t, rsaPub, jose.JSONWebKey{Key: f.ec, KeyID: "ec-1"})), wantErr: "key 1"},
		{name: "symmetric key", jwks: string(jwksOf(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac"})), wantErr: "symmetric"},
		{name: "symmetric key, kty hidden", jwks: `{"keys":[{"kid":"x","k":"c2VjcmV0"}]}`, wantErr: "symmetric"},
		{name: "weak RSA 1024", jwks: weakRSA, wantErr: "RSA key is 1024 bits, minimum 2048"},
		{name: "duplicate kid", jwks: string(jwksOf(t, rsaPub, pubJWK(&f.rsa2.PublicKey, "rsa-1", jose.RS256))), wantErr: `keys 0 and 1 have the same kid "rsa-1"`},
		{name: "two keys without kid", jwks: string(jwksOf(t, jose.JSONWebKey{Key: &f.rsa.PublicKey}, jose.JSONWebKey{Key: &f.ec.PublicKey})), wantErr: "both lack a kid"},
		{name: "empty key set", jwks: `{"keys":[]}`, wantErr: "key set is empty"},
		{name: "empty document", jwks: ``, wantErr: "empty document"},
		{name: "no keys member", jwks: `{}`, wantErr: `no "keys" member`},
		{name: "keys is null", jwks: `{"keys":null}`, wantErr: `no "keys" member`},
		{name: "not JSON", jwks: `-----BEGIN PUBLIC KEY-----`, wantErr: "not a JSON object"},
		{name: "JSON array", jwks: `[]`, wantErr: "not a JSON object"},
		{name: "key not an object", jwks: `{"keys":["rsa"]}`, wantErr: "not a JWK object"},
		{name: "duplicate member", jwks: `{"keys":[],"keys":[]}`, wantErr: "not a JSON object"},
		{name: "EC P-521", jwks: string(jwksOf(t, jose.JSONWebKey{Key: &p521.PublicKey, KeyID: "ec-521"})), wantErr: `EC curve "P-521" not supported`},
		{name: "unknown kty", jwks: `{"keys":[{"kty":"AKP","kid":"pq","alg":"ML-DSA-44","pub":"AA"}]}`, wantErr: `key type "AKP" not supported`},
		{name: "missing kty", jwks: `{"keys":[{"kid":"x","n":"AQAB","e":"AQAB"}]}`, wantErr: "missing kty"},
		{name: "OKP X25519", jwks: `{"keys":[{"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"}]}`, wantErr: `OKP curve "X25519" not supported`},
		{name: "encryption key", jwks: withMember("use", `"enc"`), wantErr: `use "enc"`},
		{name: "key_ops without verify", jwks: withMember("key_ops", `["encrypt"]`), wantErr: "key_ops"},
		{name: "alg HS256 on RSA key", jwks: withMember("alg", `"HS256"`), wantErr: `alg "HS256" not allowed`},
		{name: "alg none", jwks: withMember("alg", `"none"`), wantErr: `alg "none" not allowed`},
		{name: "alg ES256 on RSA key", jwks: withMember("alg", `"ES256"`), wantErr: "does not fit"},
		{name: "broken modulus", jwks: withMember("n", `"!!"`), wantErr: "invalid RSA key"},
		{name: "EC point not on curve", jwks: `{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(append(make([]byte, 31), 1)) + `"}]}`, wantErr: "invalid EC key"},
		{name: "too large", jwks: `{"keys":[` + strings.Repeat(" ", MaxJWKSSize) + `]}`, wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateJWKS([]byte(tt.jwks))
			_, nvErr := NewVerifier([]byte(tt.jwks), WithAudience(testAudience))
			if tt.wantErr == "" {
				if err != nil || nvErr != nil {
					t.Fatalf("ValidateJWKS = %v, NewVerifier = %v; want valid", err, nvErr)
				}
				return
			}
			if !errors.Is(err, ErrInvalidJWKS) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateJWKS error = %v, want ErrInvalidJWKS mentioning %q", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if nvErr == nil || nvErr.Error() != err.Error() {
				t.Errorf("NewVerifier error = %v, want %v", nvErr, err)
			}
			if strings.Contains(err.Error(), `"d":`) || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("error echoes key material or input: %v", err)
			}
		})
	}
}

func mustP384(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func TestDNS1123(t *testing.T) {
	long63, long64 := strings.Repeat("a", 63), strings.Repeat("a", 64)
	tests := []struct {
		s                string
		label, subdomain bool
	}{
		{"tenant-a", true, true},
		{"a", true, true},
		{"0abc", true, true},
		{long63, true, true},
		{long64, false, true},
		{"web.v2", false, true},
		{strings.Repeat("a.", 126) + "a", false, true},
		{strings.Repeat("a.", 127) + "a", false, false},
		{"", false, false},
		{"-a", false, false},
		{"a-", false, false},
		{"A", false, false},
		{"a_b", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a:b", false, false},
		{"ａ", false, false},
	}
	for _, tt := range tests {
		if got := isDNS1123Label(tt.s); got != tt.label {
			t.Errorf("isDNS1123Label(%q) = %v", tt.s, got)
		}
		if got := isDNS1123Subdomain(tt.s); got != tt.subdomain {
			t.Errorf("isDNS1123Subdomain(%q) = %v", tt.s, got)
		}
	}
}
