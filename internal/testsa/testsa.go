// Package testsa issues Kubernetes-shaped projected service-account tokens
// for tests, as a cluster's service-account issuer would: RS256 over the
// same claims the kube-apiserver puts in a pod-bound token.
package testsa

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultIssuer is the iss claim of tokens, as in-cluster.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// Issuer signs service-account tokens.
type Issuer struct {
	key    *rsa.PrivateKey
	kid    string
	signer jose.Signer
}

// New returns an issuer with a fresh RSA-2048 key.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := fmt.Sprintf("k%d", time.Now().UnixNano())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{key: key, kid: kid, signer: signer}
}

// JWKS is the issuer's public key set, as /openid/v1/jwks serves it.
func (i *Issuer) JWKS() []byte {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: "RS256", Use: "sig"}}})
	return b
}

// Opts vary a token.
type Opts struct {
	Audience string        // default "pullgate"
	TTL      time.Duration // default 1h; negative for an expired token
	Issuer   string        // default DefaultIssuer
	// Unbound leaves out the pod claim: a token not bound to a pod (as a
	// long-lived Secret-based token is).
	Unbound bool
}

// Token issues a pod-bound token for namespace/serviceAccount.
func (i *Issuer) Token(t testing.TB, namespace, serviceAccount string, o Opts) string {
	t.Helper()
	if o.Audience == "" {
		o.Audience = "pullgate"
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	now := time.Now()
	if o.TTL < 0 {
		now = now.Add(2 * o.TTL)
		o.TTL = -o.TTL
	}
	claims := map[string]any{
		"iss": o.Issuer,
		"aud": []string{o.Audience},
		"sub": "system:serviceaccount:" + namespace + ":" + serviceAccount,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(o.TTL).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]any{"name": serviceAccount, "uid": "4a1c1d1e-0000-4000-8000-000000000001"},
			"pod":            map[string]any{"name": serviceAccount + "-pod", "uid": "4a1c1d1e-0000-4000-8000-000000000002"},
		},
	}
	if o.Unbound {
		delete(claims["kubernetes.io"].(map[string]any), "pod")
	}
	tok, err := jwt.Signed(i.signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
