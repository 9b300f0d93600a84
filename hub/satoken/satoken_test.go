package satoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://kubernetes.default.svc.cluster.local"
	testAudience = "pullgate"
	saUID        = "8f6c1b9e-3a52-4d0e-9b7a-2f1d6c4e5a10"
	podUID       = "c2a7d3f4-91b8-4e6a-8d5c-0b3e7f9a1d22"
	nodeUID      = "5e4d3c2b-1a09-48f7-a6b5-c4d3e2f1a0b9"
)

// testNow is the fixed clock of all tests.
var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

type fixture struct {
	rsa, rsa2, attacker *rsa.PrivateKey
	ec                  *ecdsa.PrivateKey
	ed                  ed25519.PrivateKey
}

// keys are generated once per test binary: RSA generation dominates the
// run time, especially under -race.
var keys = sync.OnceValue(func() *fixture {
	mustRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &fixture{rsa: mustRSA(), rsa2: mustRSA(), attacker: mustRSA(), ec: ec, ed: ed}
})

// jwksOf marshals public JWKs the way kube-apiserver serves /openid/v1/jwks.
func jwksOf(t testing.TB, ks ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pubJWK(key any, kid string, alg jose.SignatureAlgorithm) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

// clusterJWKS holds one key of each supported kind.
func clusterJWKS(t testing.TB) []byte {
	f := keys()
	return jwksOf(t,
		pubJWK(&f.rsa.PublicKey, "rsa-1", jose.RS256),
		pubJWK(&f.ec.PublicKey, "ec-1", jose.ES256),
		pubJWK(f.ed.Public(), "ed-1", jose.EdDSA),
	)
}

// tokenClaims is shaped like a token the kubelet obtains for a credential
// provider with tokenAttributes: pod-bound, with node info and a jti.
func tokenClaims() map[string]any {
	return map[string]any{
		"aud": []string{testAudience},
		"exp": testNow.Add(time.Hour).Unix(),
		"iat": testNow.Add(-time.Minute).Unix(),
		"nbf": testNow.Add(-time.Minute).Unix(),
		"iss": testIssuer,
		"jti": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
		"kubernetes.io": map[string]any{
			"namespace":      "tenant-a",
			"node":           map[string]any{"name": "worker-1", "uid": nodeUID},
			"pod":            map[string]any{"name": "web-7d9c6b5f4-x2k8p", "uid": podUID},
			"serviceaccount": map[string]any{"name": "web", "uid": saUID},
		},
		"sub": "system:serviceaccount:tenant-a:web",
	}
}

func k8sBlock(m map[string]any) map[string]any { return m["kubernetes.io"].(map[string]any) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw signs payload with go-jose; kid "" leaves the header without kid.
func signRaw(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, payload []byte) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, mutate ...func(map[string]any)) string {
	t.Helper()
	c := tokenClaims()
	for _, m := range mutate {
		m(c)
	}
	return signRaw(t, key, alg, kid, mustJSON(t, c))
}

// signEmbedded signs a token whose header carries the signer's own public
// key ("jwk"), the classic self-signed forgery.
func signEmbedded(t testing.TB, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: true}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(mustJSON(t, tokenClaims()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unsigned builds a compact token by hand, for headers go-jose refuses to sign.
func unsigned(t testing.TB, header string, sig []byte) string {
	return b64([]byte(header)) + "." + b64(mustJSON(t, tokenClaims())) + "." + b64(sig)
}

func TestVerify(t *testing.T) {
	f := keys()
	all := clusterJWKS(t)
	rsaOnly := jwksOf(t, pubJWK(&f.rsa.PublicKey, "rsa-1", jose.RS256))
	rsaNoAlg := jwksOf(t, jose.JSONWebKey{Key: &f.rsa.PublicKey, KeyID: "rsa-1", Use: "sig"})
	twoRSA := jwksOf(t, pubJWK(&f.rsa.PublicKey, "rsa-1", jose.RS256), pubJWK(&f.rsa2.PublicKey, "rsa-2", jose.RS256))
	rsaAndEC := jwksOf(t, pubJWK(&f.rsa.PublicKey, "rsa-1", jose.RS256), pubJWK(&f.ec.PublicKey, "ec-1", jose.ES256))

	pubDER, err := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	valid := sign(t, f.rsa, jose.RS256, "rsa-1")
	tampered := func() string {
		parts := strings.Split(valid, ".")
		c := tokenClaims()
		k8sBlock(c)["namespace"] = "tenant-b"
		c["sub"] = "system:serviceaccount:tenant-b:web"
		parts[1] = b64(mustJSON(t, c))
		return strings.Join(parts, ".")
	}()

	tests := []struct {
		name    string
		jwks    []byte // default: all
		opts    []Option
		token   string
		wantErr error
		check   func(t *testing.T, c Claims)
	}{
		{name: "valid RS256", token: valid, check: func(t *testing.T, c Claims) {
			want := Claims{
				Issuer: testIssuer, Subject: "system:serviceaccount:tenant-a:web",
				Namespace: "tenant-a", ServiceAccount: "web", ServiceAccountUID: saUID,
				Pod: "web-7d9c6b5f4-x2k8p", PodUID: podUID, Node: "worker-1",
				Audience: []string{testAudience},
				Expiry:   testNow.Add(time.Hour), IssuedAt: testNow.Add(-time.Minute),
			}
			if !claimsEqual(c, want) {
				t.Errorf("claims = %+v\nwant     %+v", c, want)
			}
		}},
		{name: "valid ES256", token: sign(t, f.ec, jose.ES256, "ec-1"), check: wantSA("tenant-a", "web")},
		{name: "valid EdDSA", token: sign(t, f.ed, jose.EdDSA, "ed-1"), check: wantSA("tenant-a", "web")},
		{name: "valid PS256 when the JWK names no alg", jwks: rsaNoAlg, token: sign(t, f.rsa, jose.PS256, "rsa-1"), check: wantSA("tenant-a", "web")},
		{name: "JWK alg RS256 refuses PS256", token: sign(t, f.rsa, jose.PS256, "rsa-1"), wantErr: ErrUnknownKey},
		{name: "not bound to a pod", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) {
			delete(k8sBlock(m), "pod")
			delete(k8sBlock(m), "node")
		}), check: func(t *testing.T, c Claims) {
			if c.Pod != "" || c.PodUID != "" || c.Node != "" {
				t.Errorf("pod/node = %q/%q/%q, want empty", c.Pod, c.PodUID, c.Node)
			}
		}},
		{name: "aud as a single string", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("aud", testAudience)), check: wantSA("tenant-a", "web")},

		// time
		{name: "expired", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("exp", testNow.Add(-time.Hour).Unix()),
			set("iat", testNow.Add(-2*time.Hour).Unix()), set("nbf", testNow.Add(-2*time.Hour).Unix())), wantErr: ErrExpired},
		{name: "expired within leeway", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("exp", testNow.Add(-10*time.Second).Unix())), check: wantSA("tenant-a", "web")},
		{name: "expired beyond custom leeway", opts: []Option{WithLeeway(5 * time.Second)},
			token: sign(t, f.rsa, jose.RS256, "rsa-1", set("exp", testNow.Add(-10*time.Second).Unix())), wantErr: ErrExpired},
		{name: "not yet valid", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("nbf", testNow.Add(10*time.Minute).Unix()),
			set("iat", testNow.Add(10*time.Minute).Unix())), wantErr: ErrNotYetValid},
		{name: "issued in the future", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("iat", testNow.Add(10*time.Minute).Unix()), del("nbf")), wantErr: ErrNotYetValid},
		{name: "nbf within leeway", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("nbf", testNow.Add(20*time.Second).Unix()),
			set("iat", testNow.Add(20*time.Second).Unix())), check: wantSA("tenant-a", "web")},
		{name: "no exp", token: sign(t, f.rsa, jose.RS256, "rsa-1", del("exp")), wantErr: ErrMalformed},
		{name: "exp not a number", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("exp", "tomorrow")), wantErr: ErrMalformed},

		// audience and issuer
		{name: "wrong audience", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("aud", []string{"https://kubernetes.default.svc.cluster.local"})), wantErr: ErrAudience},
		{name: "no audience", token: sign(t, f.rsa, jose.RS256, "rsa-1", del("aud")), wantErr: ErrAudience},
		{name: "audience among several", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("aud", []string{"vault", testAudience, "sts.amazonaws.com"})),
			check: func(t *testing.T, c Claims) {
				if len(c.Audience) != 3 {
					t.Errorf("audience = %q", c.Audience)
				}
			}},
		{name: "audience is case-sensitive", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("aud", []string{"PullGate"})), wantErr: ErrAudience},
		{name: "right issuer", opts: []Option{WithIssuer(testIssuer)}, token: valid, check: wantSA("tenant-a", "web")},
		{name: "wrong issuer", opts: []Option{WithIssuer(testIssuer)},
			token: sign(t, f.rsa, jose.RS256, "rsa-1", set("iss", "https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER")), wantErr: ErrIssuer},
		{name: "any issuer without WithIssuer", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("iss", "https://elsewhere")), check: wantSA("tenant-a", "web")},

		// keys and signatures
		{name: "unknown kid", token: sign(t, f.rsa, jose.RS256, "rsa-9"), wantErr: ErrUnknownKey},
		{name: "forged with another key under the same kid", token: sign(t, f.attacker, jose.RS256, "rsa-1"), wantErr: ErrSignature},
		{name: "forged EC token under the RSA kid", token: sign(t, f.ec, jose.ES256, "rsa-1"), wantErr: ErrUnknownKey},
		{name: "tampered payload", token: tampered, wantErr: ErrSignature},
		{name: "alg none", token: unsigned(t, `{"alg":"none","kid":"rsa-1"}`, nil), wantErr: ErrSignature},
		{name: "alg None", token: unsigned(t, `{"alg":"None"}`, nil), wantErr: ErrSignature},
		{name: "HS256 keyed with the RSA public key PEM", token: sign(t, pubPEM, jose.HS256, "rsa-1"), wantErr: ErrSignature},
		{name: "HS256 keyed with the RSA public key DER", token: sign(t, pubDER, jose.HS256, ""), wantErr: ErrSignature},
		{name: "HS512 keyed with the RSA modulus", token: sign(t, f.rsa.N.Bytes(), jose.HS512, "rsa-1"), wantErr: ErrSignature},
		{name: "embedded jwk header is ignored", token: signEmbedded(t, f.attacker, "rsa-1"), wantErr: ErrSignature},
		{name: "embedded jwk header without kid is ignored", jwks: rsaOnly, token: signEmbedded(t, f.attacker, ""), wantErr: ErrSignature},
		{name: "unknown critical header", token: unsigned(t, `{"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}`, []byte("sig")), wantErr: ErrMalformed},
		{name: "no kid, one key", jwks: rsaOnly, token: sign(t, f.rsa, jose.RS256, ""), check: wantSA("tenant-a", "web")},
		{name: "no kid, one compatible key among two", jwks: rsaAndEC, token: sign(t, f.ec, jose.ES256, ""), check: wantSA("tenant-a", "web")},
		{name: "no kid, two keys", jwks: twoRSA, token: sign(t, f.rsa, jose.RS256, ""), wantErr: ErrUnknownKey},
		{name: "no kid, forged", jwks: rsaOnly, token: sign(t, f.attacker, jose.RS256, ""), wantErr: ErrSignature},

		// service-account claims
		{name: "sub/namespace mismatch", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:serviceaccount:tenant-b:web")), wantErr: ErrNotServiceAccount},
		{name: "block/namespace mismatch", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) { k8sBlock(m)["namespace"] = "tenant-b" }), wantErr: ErrNotServiceAccount},
		{name: "sub/name mismatch", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:serviceaccount:tenant-a:admin")), wantErr: ErrNotServiceAccount},
		{name: "missing kubernetes.io block", token: sign(t, f.rsa, jose.RS256, "rsa-1", del("kubernetes.io")), wantErr: ErrNotServiceAccount},
		{name: "claim names are case-sensitive", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) {
			m["Kubernetes.io"] = m["kubernetes.io"]
			delete(m, "kubernetes.io")
		}), wantErr: ErrNotServiceAccount},
		{name: "missing serviceaccount", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) { delete(k8sBlock(m), "serviceaccount") }), wantErr: ErrNotServiceAccount},
		{name: "missing serviceaccount uid", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) {
			k8sBlock(m)["serviceaccount"] = map[string]any{"name": "web"}
		}), wantErr: ErrNotServiceAccount},
		{name: "pod without uid", token: sign(t, f.rsa, jose.RS256, "rsa-1", func(m map[string]any) {
			k8sBlock(m)["pod"] = map[string]any{"name": "web-1"}
		}), wantErr: ErrNotServiceAccount},
		{name: "user subject", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "admin@example.com")), wantErr: ErrNotServiceAccount},
		{name: "node subject", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:node:worker-1")), wantErr: ErrNotServiceAccount},
		{name: "extra colon in sub", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:serviceaccount:tenant-a:web:x")), wantErr: ErrNotServiceAccount},
		{name: "namespace not a DNS label", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:serviceaccount:Tenant_A:web"),
			func(m map[string]any) { k8sBlock(m)["namespace"] = "Tenant_A" }), wantErr: ErrNotServiceAccount},
		{name: "name not a DNS subdomain", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("sub", "system:serviceaccount:tenant-a:web/.."),
			func(m map[string]any) { k8sBlock(m)["serviceaccount"] = map[string]any{"name": "web/..", "uid": saUID} }), wantErr: ErrNotServiceAccount},
		{name: "legacy secret-based token", token: signRaw(t, f.rsa, jose.RS256, "rsa-1", mustJSON(t, map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"sub":                                    "system:serviceaccount:tenant-a:web",
			"kubernetes.io/serviceaccount/namespace": "tenant-a",
			"kubernetes.io/serviceaccount/service-account.name": "web",
			"kubernetes.io/serviceaccount/service-account.uid":  saUID,
		})), wantErr: ErrMalformed},

		// malformed input
		{name: "empty", token: "", wantErr: ErrMalformed},
		{name: "garbage", token: "garbage", wantErr: ErrMalformed},
		{name: "two parts", token: "eyJhbGciOiJSUzI1NiJ9.e30", wantErr: ErrMalformed},
		{name: "four parts", token: valid + ".x", wantErr: ErrMalformed},
		{name: "base64 garbage in three parts", token: "a.b.c", wantErr: ErrMalformed},
		{name: "trailing newline", token: valid + "\n", wantErr: ErrMalformed},
		{name: "JSON serialization", token: `{"payload":"e30","protected":"eyJhbGciOiJSUzI1NiJ9","signature":"AA"}`, wantErr: ErrMalformed},
		{name: "huge validly signed token", token: sign(t, f.rsa, jose.RS256, "rsa-1", set("pad", strings.Repeat("x", MaxTokenSize))), wantErr: ErrMalformed},
		{name: "huge garbage", token: strings.Repeat("A", MaxTokenSize+1), wantErr: ErrMalformed},
		{name: "payload not JSON", token: signRaw(t, f.rsa, jose.RS256, "rsa-1", []byte("not json")), wantErr: ErrMalformed},
		{name: "duplicate claim", token: signRaw(t, f.rsa, jose.RS256, "rsa-1",
			[]byte(`{"sub":"system:serviceaccount:tenant-a:web","sub":"system:serviceaccount:tenant-b:web"}`)), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwks := tt.jwks
			if jwks == nil {
				jwks = all
			}
			opts := append([]Option{WithAudience(testAudience), WithClock(fixedClock)}, tt.opts...)
			v, err := NewVerifier(jwks, opts...)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			c, err := v.Verify(tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
				}
				if !claimsEqual(c, Claims{}) {
					t.Errorf("Verify returned claims %+v with an error", c)
				}
				assertNoTokenText(t, err, tt.token)
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func wantSA(ns, name string) func(*testing.T, Claims) {
	return func(t *testing.T, c Claims) {
		t.Helper()
		if c.Namespace != ns || c.ServiceAccount != name || c.ServiceAccountUID == "" {
			t.Errorf("claims = %+v, want %s/%s", c, ns, name)
		}
	}
}

func claimsEqual(a, b Claims) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.Namespace == b.Namespace &&
		a.ServiceAccount == b.ServiceAccount && a.ServiceAccountUID == b.ServiceAccountUID &&
		a.Pod == b.Pod && a.PodUID == b.PodUID && a.Node == b.Node &&
		strings.Join(a.Audience, "\x00") == strings.Join(b.Audience, "\x00") &&
		a.Expiry.Equal(b.Expiry) && a.IssuedAt.Equal(b.IssuedAt)
}

// assertNoTokenText fails if the error message carries the token or any
// sizeable piece of it (a signature or payload segment).
func assertNoTokenText(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if token != "" && len(token) >= 8 && strings.Contains(msg, token) {
		t.Errorf("error message contains the token: %q", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 16 && strings.Contains(msg, seg[:16]) {
			t.Errorf("error message contains a token segment: %q", msg)
		}
	}
	if len(msg) > 512 {
		t.Errorf("error message is %d bytes long", len(msg))
	}
}

func TestNewVerifierOptions(t *testing.T) {
	jwks := clusterJWKS(t)
	tests := []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{name: "audience only", opts: []Option{WithAudience(testAudience)}},
		{name: "all options", opts: []Option{WithAudience(testAudience), WithIssuer(testIssuer), WithClock(fixedClock), WithLeeway(time.Minute)}},
		{name: "nil option ignored", opts: []Option{nil, WithAudience(testAudience)}},
		{name: "no audience", opts: nil, wantErr: "WithAudience is required"},
		{name: "empty audience", opts: []Option{WithAudience("")}, wantErr: "WithAudience is required"},
		{name: "nil clock", opts: []Option{WithAudience(testAudience), WithClock(nil)}, wantErr: "clock"},
		{name: "negative leeway", opts: []Option{WithAudience(testAudience), WithLeeway(-time.Second)}, wantErr: "leeway"},
		{name: "huge leeway", opts: []Option{WithAudience(testAudience), WithLeeway(time.Hour)}, wantErr: "leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(jwks, tt.opts...)
			if tt.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier = %v, %v", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewVerifier error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyDefaultLeeway(t *testing.T) {
	f := keys()
	v, err := NewVerifier(clusterJWKS(t), WithAudience(testAudience), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		skew    time.Duration
		wantErr error
	}{
		{skew: DefaultLeeway - time.Second},
		{skew: DefaultLeeway + time.Second, wantErr: ErrExpired},
	} {
		tok := sign(t, f.rsa, jose.RS256, "rsa-1", set("exp", testNow.Add(-tt.skew).Unix()))
		if _, err := v.Verify(tok); !errors.Is(err, tt.wantErr) && !(tt.wantErr == nil && err == nil) {
			t.Errorf("exp %v ago: err = %v, want %v", tt.skew, err, tt.wantErr)
		}
	}
}

// TestVerifyConcurrent exercises one Verifier from many goroutines (run
// with -race).
func TestVerifyConcurrent(t *testing.T) {
	f := keys()
	v, err := NewVerifier(clusterJWKS(t), WithAudience(testAudience), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, f.ec, jose.ES256, "ec-1")
	bad := sign(t, f.attacker, jose.RS256, "rsa-1")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(good); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
				}
				if _, err := v.Verify(bad); !errors.Is(err, ErrSignature) {
					t.Errorf("goroutine %d: forged token: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestVerifyClaimsAreIndependent checks that the returned audience is a copy.
func TestVerifyClaimsAreIndependent(t *testing.T) {
	f := keys()
	v, err := NewVerifier(clusterJWKS(t), WithAudience(testAudience), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, f.rsa, jose.RS256, "rsa-1")
	c1, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	c1.Audience[0] = "changed"
	c2, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Audience[0] != testAudience {
		t.Errorf("audience = %q", c2.Audience)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := keys()
	v, err := NewVerifier(clusterJWKS(b), WithAudience(testAudience), WithClock(fixedClock))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  any
		alg  jose.SignatureAlgorithm
		kid  string
	}{
		{"RS256", f.rsa, jose.RS256, "rsa-1"},
		{"ES256", f.ec, jose.ES256, "ec-1"},
		{"EdDSA", f.ed, jose.EdDSA, "ed-1"},
	} {
		tok := sign(b, bc.key, bc.alg, bc.kid)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
