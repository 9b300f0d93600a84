package satoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

const (
	// MaxJWKSSize bounds the JWKS document accepted by NewVerifier and
	// ValidateJWKS. A cluster's issuer publishes a handful of keys.
	MaxJWKSSize = 256 << 10
	// MaxJWKSKeys bounds the number of keys in a JWKS.
	MaxJWKSKeys = 64
	// MinRSABits is the smallest RSA modulus accepted in a JWKS.
	MinRSABits = 2048
)

// verificationKey is one parsed, vetted public key of a JWKS.
type verificationKey struct {
	kid string
	alg jose.SignatureAlgorithm // from the JWK "alg" member; empty when absent
	key any                     // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// canVerify reports whether k may verify a signature made with alg: the key
// type and curve must fit the algorithm, and a JWK that names an algorithm is
// used with that algorithm only. This is what keeps an RSA key from ever
// being used as an HMAC secret or with another family's algorithm.
func (k verificationKey) canVerify(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	return keyFitsAlg(k.key, alg)
}

func keyFitsAlg(key any, alg jose.SignatureAlgorithm) bool {
	switch pub := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// allowedAlgs are the only JWS algorithms ever accepted. Never "none", never
// HS*: the keys are public, so an HMAC "signature" keyed with them proves
// nothing. Returned fresh so no caller can mutate a shared slice.
func allowedAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256,
		jose.ES256, jose.ES384, jose.EdDSA,
	}
}

func isAllowedAlg(alg string) bool {
	return slices.Contains(allowedAlgs(), jose.SignatureAlgorithm(alg))
}

// jwkProbe reads the members of a JWK that decide whether it is acceptable,
// before go-jose parses the key material. A non-nil pointer means "present".
type jwkProbe struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`

	K    *josejson.RawMessage `json:"k"`
	D    *josejson.RawMessage `json:"d"`
	P    *josejson.RawMessage `json:"p"`
	Q    *josejson.RawMessage `json:"q"`
	Dp   *josejson.RawMessage `json:"dp"`
	Dq   *josejson.RawMessage `json:"dq"`
	Qi   *josejson.RawMessage `json:"qi"`
	Oth  *josejson.RawMessage `json:"oth"`
	Priv *josejson.RawMessage `json:"priv"`
}

// privateParam names the first private-key member present, or "".
func (p *jwkProbe) privateParam() string {
	for _, m := range []struct {
		name string
		v    *josejson.RawMessage
	}{{"d", p.D}, {"p", p.P}, {"q", p.Q}, {"dp", p.Dp}, {"dq", p.Dq}, {"qi", p.Qi}, {"oth", p.Oth}, {"priv", p.Priv}} {
		if m.v != nil {
			return m.name
		}
	}
	return ""
}

// ValidateJWKS checks a service-account issuer JWKS (as served at
// /openid/v1/jwks) the same way NewVerifier does, without building a
// Verifier. It is meant for operator input such as `cluster create --sa-jwks`.
func ValidateJWKS(jwks []byte) error {
	_, err := parseJWKS(jwks)
	return err
}

// parseJWKS parses and vets a JWKS. Every key must be a public signature
// key of an accepted type; anything else is refused rather than skipped, so
// that an operator learns at once that the document is not what they think.
func parseJWKS(data []byte) ([]verificationKey, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrInvalidJWKS)
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("%w: document is %d bytes, limit %d", ErrInvalidJWKS, len(data), MaxJWKSSize)
	}
	var doc struct {
		Keys *[]josejson.RawMessage `json:"keys"`
	}
	// go-jose's JSON decoder matches member names case-sensitively and
	// refuses duplicate members, which is what we want for key material.
	if err := josejson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with a \"keys\" array: %w", ErrInvalidJWKS, err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" member", ErrInvalidJWKS)
	}
	raw := *doc.Keys
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: key set is empty", ErrInvalidJWKS)
	}
	if len(raw) > MaxJWKSKeys {
		return nil, fmt.Errorf("%w: %d keys, limit %d", ErrInvalidJWKS, len(raw), MaxJWKSKeys)
	}

	keys := make([]verificationKey, 0, len(raw))
	seen := make(map[string]int, len(raw))
	for i, r := range raw {
		k, err := parseJWK(i, r)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidJWKS, err)
		}
		if j, dup := seen[k.kid]; dup {
			if k.kid == "" {
				return nil, fmt.Errorf("%w: keys %d and %d both lack a kid; a set of several keys needs distinct kids", ErrInvalidJWKS, j, i)
			}
			return nil, fmt.Errorf("%w: keys %d and %d have the same kid %q", ErrInvalidJWKS, j, i, detail(k.kid))
		}
		seen[k.kid] = i
		keys = append(keys, k)
	}
	return keys, nil
}

// parseJWK parses and vets the i-th key of a set; errors name the key by
// index and kid.
func parseJWK(i int, raw []byte) (verificationKey, error) {
	var p jwkProbe
	if err := josejson.Unmarshal(raw, &p); err != nil {
		return verificationKey{}, fmt.Errorf("key %d: not a JWK object: %w", i, err)
	}
	name := fmt.Sprintf("key %d (kid %q)", i, detail(p.Kid))
	if p.Kty == "oct" || p.K != nil {
		return verificationKey{}, fmt.Errorf("%s: symmetric (kty \"oct\") key refused: only public keys may verify service-account tokens", name)
	}
	if m := p.privateParam(); m != "" {
		return verificationKey{}, fmt.Errorf("%s: contains private key material (member %q): publish only the public key", name, m)
	}
	switch p.Kty {
	case "RSA":
	case "EC":
		if p.Crv != "P-256" && p.Crv != "P-384" {
			return verificationKey{}, fmt.Errorf("%s: EC curve %q not supported (want P-256 or P-384)", name, detail(p.Crv))
		}
	case "OKP":
		if p.Crv != "Ed25519" {
			return verificationKey{}, fmt.Errorf("%s: OKP curve %q not supported (want Ed25519)", name, detail(p.Crv))
		}
	case "":
		return verificationKey{}, fmt.Errorf("%s: missing kty", name)
	default:
		return verificationKey{}, fmt.Errorf("%s: key type %q not supported (want RSA, EC or OKP)", name, detail(p.Kty))
	}
	if p.Use != "" && p.Use != "sig" {
		return verificationKey{}, fmt.Errorf("%s: use %q is not \"sig\"", name, detail(p.Use))
	}
	if p.KeyOps != nil && !slices.Contains(p.KeyOps, "verify") {
		return verificationKey{}, fmt.Errorf("%s: key_ops does not include \"verify\"", name)
	}
	if p.Alg != "" && !isAllowedAlg(p.Alg) {
		return verificationKey{}, fmt.Errorf("%s: alg %q not allowed", name, detail(p.Alg))
	}

	var jwk jose.JSONWebKey
	if err := josejson.Unmarshal(raw, &jwk); err != nil {
		return verificationKey{}, fmt.Errorf("%s: invalid %s key: %w", name, p.Kty, err)
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return verificationKey{}, fmt.Errorf("%s: not a valid public key", name)
	}
	if pub, ok := jwk.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < MinRSABits {
		return verificationKey{}, fmt.Errorf("%s: RSA key is %d bits, minimum %d", name, pub.N.BitLen(), MinRSABits)
	}
	k := verificationKey{kid: jwk.KeyID, alg: jose.SignatureAlgorithm(p.Alg), key: jwk.Key}
	if k.alg != "" && !keyFitsAlg(k.key, k.alg) {
		return verificationKey{}, fmt.Errorf("%s: alg %q does not fit key type %s", name, p.Alg, p.Kty)
	}
	return k, nil
}
