package satoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Fuzz targets for what a node sends the hub on a pod's behalf: the pod's
// service-account token (verified against the cluster's pinned JWKS) and
// the JWKS itself (operator input, and a node's in sync).

func fuzzEd25519(seed string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte(seed))
}

// FuzzVerify: arbitrary tokens never panic and never verify unless signed
// by a key of the set; errors carry no sizeable piece of the token.
func FuzzVerify(f *testing.F) {
	key, attacker := fuzzEd25519("pullgate-fuzz-sa-issuer-key-0001"), fuzzEd25519("pullgate-fuzz-sa-attacker-key-01")
	jwks := jwksOf(f, pubJWK(key.Public(), "ed-1", jose.EdDSA))
	v, err := NewVerifier(jwks, WithAudience(testAudience), WithIssuer(testIssuer), WithClock(fixedClock))
	if err != nil {
		f.Fatal(err)
	}
	good := sign(f, key, jose.EdDSA, "ed-1")
	for _, s := range []string{
		good,
		sign(f, attacker, jose.EdDSA, "ed-1"),
		sign(f, key, jose.EdDSA, ""),
		sign(f, key, jose.EdDSA, "ed-1", set("aud", "other")),
		sign(f, key, jose.EdDSA, "ed-1", set("exp", 1)),
		sign(f, key, jose.EdDSA, "ed-1", del("kubernetes.io")),
		unsigned(f, `{"alg":"none"}`, nil),
		unsigned(f, `{"alg":"HS256","kid":"ed-1"}`, make([]byte, 32)),
		unsigned(f, `{"alg":"EdDSA","kid":"ed-1","crit":["b64"],"b64":false}`, make([]byte, 64)),
		unsigned(f, `{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`, make([]byte, 64)),
		"", "a.b.c", "...", strings.Repeat("A", 20000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			assertNoTokenText(t, err, tok)
			if c.Namespace != "" || c.ServiceAccount != "" || c.Audience != nil {
				t.Fatalf("claims returned with an error: %+v", c)
			}
			return
		}
		jws, perr := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if perr != nil {
			t.Fatalf("verified a token that is not an EdDSA JWS: %v", perr)
		}
		if _, err := jws.Verify(key.Public()); err != nil {
			t.Fatalf("verified a token the key did not sign: %q", tok)
		}
		if c.Namespace == "" || c.ServiceAccount == "" || c.Issuer != testIssuer {
			t.Fatalf("verified claims without namespace or service account: %+v", c)
		}
	})
}

// FuzzParseJWKS: key sets never panic; accepted ones hold only public
// signature keys; errors never quote private key material.
func FuzzParseJWKS(f *testing.F) {
	key := fuzzEd25519("pullgate-fuzz-sa-issuer-key-0001")
	f.Add(jwksOf(f, pubJWK(key.Public(), "ed-1", jose.EdDSA)))
	f.Add(jwksOf(f, pubJWK(key.Public(), "", "")))
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "p", Algorithm: "EdDSA"}}})
	f.Add(priv)
	for _, s := range []string{
		`{"keys":[]}`, `{}`, `{"keys":null}`, `[]`, `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"secret-private-scalar-value"}]}`,
		`{"keys":[], "keys":[]}`, `{"Keys":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			var probe struct {
				Keys []map[string]any `json:"keys"`
			}
			if json.Unmarshal(data, &probe) == nil {
				for _, k := range probe.Keys {
					for _, p := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
						if s, ok := k[p].(string); ok && len(s) >= 8 && strings.Contains(err.Error(), s) {
							t.Fatalf("error quotes private parameter %q: %v", p, err)
						}
					}
				}
			}
			if len(err.Error()) > 2048 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if len(keys) == 0 || len(keys) > MaxJWKSKeys {
			t.Fatalf("accepted a set of %d keys", len(keys))
		}
		for _, k := range keys {
			switch k.key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("accepted a key of type %T", k.key)
			}
		}
		if ValidateJWKS(data) != nil {
			t.Fatal("ValidateJWKS disagrees with parseJWKS")
		}
	})
}
