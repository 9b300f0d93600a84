package satoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// KeyInfo identifies one key of a JWKS for an operator who compares it
// with the cluster's own (kubectl get --raw /openid/v1/jwks).
type KeyInfo struct {
	KID string `json:"kid,omitempty"`
	Kty string `json:"kty"`
	Alg string `json:"alg,omitempty"`
	// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url: it
	// names the key material itself, whatever kid it is given.
	Thumbprint string `json:"thumbprint"`
}

// DescribeJWKS vets a JWKS as NewVerifier does and identifies its keys.
func DescribeJWKS(jwks []byte) ([]KeyInfo, error) {
	keys, err := parseJWKS(jwks)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		jwk := jose.JSONWebKey{Key: k.key}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: thumbprint: %w", ErrInvalidJWKS, k.kid, err)
		}
		var kty string
		switch k.key.(type) {
		case *rsa.PublicKey:
			kty = "RSA"
		case *ecdsa.PublicKey:
			kty = "EC"
		case ed25519.PublicKey:
			kty = "OKP"
		}
		out = append(out, KeyInfo{KID: k.kid, Kty: kty, Alg: string(k.alg), Thumbprint: base64.RawURLEncoding.EncodeToString(tp)})
	}
	return out, nil
}
