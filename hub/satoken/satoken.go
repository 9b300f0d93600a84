package satoken

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// MaxTokenSize is the largest token Verify looks at; larger input is
	// refused before any decoding. Real service-account tokens are about 1 KiB.
	MaxTokenSize = 16 << 10
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway WithLeeway accepts.
	MaxLeeway = 5 * time.Minute

	saSubjectPrefix = "system:serviceaccount:"
	maxUIDLen       = 128
)

// Sentinel errors. Every error returned by Verify wraps exactly one of the
// token errors; NewVerifier and ValidateJWKS errors about the key set wrap
// ErrInvalidJWKS. Test with errors.Is.
var (
	ErrMalformed         = errors.New("satoken: malformed token")
	ErrUnknownKey        = errors.New("satoken: no matching verification key")
	ErrSignature         = errors.New("satoken: invalid signature")
	ErrExpired           = errors.New("satoken: token expired")
	ErrNotYetValid       = errors.New("satoken: token not yet valid")
	ErrAudience          = errors.New("satoken: audience mismatch")
	ErrIssuer            = errors.New("satoken: issuer mismatch")
	ErrNotServiceAccount = errors.New("satoken: not a valid service-account token")
	ErrInvalidJWKS       = errors.New("satoken: invalid JWKS")
)

// Claims of a verified Kubernetes service-account token.
type Claims struct {
	Issuer, Subject                              string
	Namespace, ServiceAccount, ServiceAccountUID string
	Pod, PodUID                                  string // empty when the token is not bound to a pod
	Node                                         string // kubernetes.io node claim if present
	Audience                                     []string
	Expiry, IssuedAt                             time.Time // IssuedAt is zero when the token has no iat
}

// Option configures a Verifier.
type Option func(*config)

type config struct {
	audience string
	issuer   string
	now      func() time.Time
	leeway   time.Duration
}

// WithAudience sets the audience the token's aud claim must contain (the
// audience configured in the kubelet's tokenAttributes). Required.
func WithAudience(aud string) Option { return func(c *config) { c.audience = aud } }

// WithIssuer requires the iss claim to equal iss (the cluster's
// --service-account-issuer). An empty iss disables the check.
func WithIssuer(iss string) Option { return func(c *config) { c.issuer = iss } }

// WithClock sets the source of the current time (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (default
// DefaultLeeway, at most MaxLeeway).
func WithLeeway(d time.Duration) Option { return func(c *config) { c.leeway = d } }

// Verifier verifies service-account tokens of one cluster. It is immutable
// after NewVerifier and safe for concurrent use.
type Verifier struct {
	cfg   config
	keys  []verificationKey
	byKid map[string]int
}

// NewVerifier parses and vets jwks (the cluster's service-account issuer
// key set) and returns a Verifier. WithAudience is required.
func NewVerifier(jwks []byte, opts ...Option) (*Verifier, error) {
	cfg := config{now: time.Now, leeway: DefaultLeeway}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	switch {
	case cfg.audience == "":
		return nil, errors.New("satoken: WithAudience is required")
	case cfg.now == nil:
		return nil, errors.New("satoken: WithClock needs a non-nil clock")
	case cfg.leeway < 0 || cfg.leeway > MaxLeeway:
		return nil, fmt.Errorf("satoken: leeway %v out of range [0, %v]", cfg.leeway, MaxLeeway)
	}
	keys, err := parseJWKS(jwks)
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, keys: keys, byKid: make(map[string]int, len(keys))}
	for i, k := range keys {
		if k.kid != "" {
			v.byKid[k.kid] = i
		}
	}
	return v, nil
}

// rawClaims is the JSON payload of a service-account token.
type rawClaims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`
	Audience   jwt.Audience     `json:"aud"`
	Expiry     *jwt.NumericDate `json:"exp"`
	NotBefore  *jwt.NumericDate `json:"nbf"`
	IssuedAt   *jwt.NumericDate `json:"iat"`
	Kubernetes *k8sClaims       `json:"kubernetes.io"`
}

// k8sClaims is the private "kubernetes.io" claim block, as produced by
// kube-apiserver (pkg/serviceaccount/claims.go).
type k8sClaims struct {
	Namespace      string     `json:"namespace"`
	ServiceAccount *objectRef `json:"serviceaccount"`
	Pod            *objectRef `json:"pod"`
	Node           *objectRef `json:"node"`
}

type objectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Verify checks token and returns its claims. The order is: size and shape,
// algorithm, key, signature, then exp/nbf/iat, issuer, audience and the
// service-account claims. No Claims are returned unless every check passes.
func (v *Verifier) Verify(token string) (Claims, error) {
	if v == nil {
		return Claims{}, errors.New("satoken: nil Verifier")
	}
	if err := checkShape(token); err != nil {
		return Claims{}, err
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgs())
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return Claims{}, fmt.Errorf("%w: algorithm %q not allowed", ErrSignature, detail(string(algErr.Got)))
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, fmt.Errorf("%w: %d signatures, want 1", ErrMalformed, len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	key, err := v.selectKey(hdr.KeyID, alg)
	if err != nil {
		return Claims{}, err
	}
	payload, err := jws.Verify(key.key)
	if errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
		return Claims{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %s signature does not verify with key %q", ErrSignature, alg, detail(key.kid))
	}

	var rc rawClaims
	if err := josejson.Unmarshal(payload, &rc); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if err := v.checkTimes(&rc); err != nil {
		return Claims{}, err
	}
	if v.cfg.issuer != "" && rc.Issuer != v.cfg.issuer {
		return Claims{}, fmt.Errorf("%w: iss %q, want %q", ErrIssuer, detail(rc.Issuer), v.cfg.issuer)
	}
	if !slices.Contains(rc.Audience, v.cfg.audience) {
		return Claims{}, fmt.Errorf("%w: aud does not contain %q (token has %d audiences)", ErrAudience, v.cfg.audience, len(rc.Audience))
	}
	c, err := serviceAccountClaims(&rc)
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

// checkShape refuses oversized input and anything but the JWS compact
// serialization (three base64url parts), before any decoding.
func checkShape(token string) error {
	switch {
	case token == "":
		return fmt.Errorf("%w: empty token", ErrMalformed)
	case len(token) > MaxTokenSize:
		return fmt.Errorf("%w: token is %d bytes, limit %d", ErrMalformed, len(token), MaxTokenSize)
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("%w: not a compact JWS: unexpected byte at offset %d", ErrMalformed, i)
		}
	}
	if dots != 2 {
		return fmt.Errorf("%w: not a compact JWS: %d parts, want 3", ErrMalformed, dots+1)
	}
	return nil
}

// selectKey picks the key for a token: by kid when the token names one,
// otherwise the only key in the set able to verify alg.
func (v *Verifier) selectKey(kid string, alg jose.SignatureAlgorithm) (verificationKey, error) {
	if kid != "" {
		i, ok := v.byKid[kid]
		if !ok {
			return verificationKey{}, fmt.Errorf("%w: no key with kid %q", ErrUnknownKey, detail(kid))
		}
		if k := v.keys[i]; !k.canVerify(alg) {
			return verificationKey{}, fmt.Errorf("%w: key %q cannot verify %s", ErrUnknownKey, detail(kid), alg)
		}
		return v.keys[i], nil
	}
	found := -1
	for i, k := range v.keys {
		if !k.canVerify(alg) {
			continue
		}
		if found >= 0 {
			return verificationKey{}, fmt.Errorf("%w: token has no kid and several keys can verify %s", ErrUnknownKey, alg)
		}
		found = i
	}
	if found < 0 {
		return verificationKey{}, fmt.Errorf("%w: token has no kid and no key can verify %s", ErrUnknownKey, alg)
	}
	return v.keys[found], nil
}

// checkTimes requires exp and checks exp, nbf and iat against the clock,
// allowing the configured leeway.
func (v *Verifier) checkTimes(rc *rawClaims) error {
	if rc.Expiry == nil {
		return fmt.Errorf("%w: missing exp claim", ErrMalformed)
	}
	now, leeway := v.cfg.now(), v.cfg.leeway
	exp := rc.Expiry.Time()
	if now.After(exp.Add(leeway)) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if rc.NotBefore != nil {
		nbf := rc.NotBefore.Time()
		if now.Add(leeway).Before(nbf) {
			return fmt.Errorf("%w: nbf %s is in the future", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
		}
		if nbf.After(exp) {
			return fmt.Errorf("%w: nbf after exp", ErrMalformed)
		}
	}
	if rc.IssuedAt != nil {
		iat := rc.IssuedAt.Time()
		if now.Add(leeway).Before(iat) {
			return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, iat.UTC().Format(time.RFC3339))
		}
		if !iat.Before(exp) {
			return fmt.Errorf("%w: iat not before exp", ErrMalformed)
		}
	}
	return nil
}

// serviceAccountClaims checks that sub names a service account, that it
// agrees with the kubernetes.io block, and that every name is one Kubernetes
// would accept; it builds the Claims.
func serviceAccountClaims(rc *rawClaims) (Claims, error) {
	rest, ok := strings.CutPrefix(rc.Subject, saSubjectPrefix)
	if !ok {
		return Claims{}, fmt.Errorf("%w: sub %q does not start with %q", ErrNotServiceAccount, detail(rc.Subject), saSubjectPrefix)
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || strings.Contains(name, ":") {
		return Claims{}, fmt.Errorf("%w: sub %q is not %s<namespace>:<name>", ErrNotServiceAccount, detail(rc.Subject), saSubjectPrefix)
	}
	if !isDNS1123Label(ns) {
		return Claims{}, fmt.Errorf("%w: namespace %q is not a DNS-1123 label", ErrNotServiceAccount, detail(ns))
	}
	if !isDNS1123Subdomain(name) {
		return Claims{}, fmt.Errorf("%w: service account name %q is not a DNS-1123 subdomain", ErrNotServiceAccount, detail(name))
	}
	k := rc.Kubernetes
	if k == nil {
		return Claims{}, fmt.Errorf("%w: missing kubernetes.io claim", ErrNotServiceAccount)
	}
	if k.Namespace != ns {
		return Claims{}, fmt.Errorf("%w: sub namespace %q does not match kubernetes.io namespace %q", ErrNotServiceAccount, ns, detail(k.Namespace))
	}
	sa := k.ServiceAccount
	if sa == nil {
		return Claims{}, fmt.Errorf("%w: missing kubernetes.io serviceaccount claim", ErrNotServiceAccount)
	}
	if sa.Name != name {
		return Claims{}, fmt.Errorf("%w: sub name %q does not match kubernetes.io serviceaccount name %q", ErrNotServiceAccount, name, detail(sa.Name))
	}
	if !validUID(sa.UID) {
		return Claims{}, fmt.Errorf("%w: missing or invalid serviceaccount uid", ErrNotServiceAccount)
	}
	c := Claims{
		Issuer:            rc.Issuer,
		Subject:           rc.Subject,
		Namespace:         ns,
		ServiceAccount:    name,
		ServiceAccountUID: sa.UID,
		Audience:          slices.Clone([]string(rc.Audience)),
		Expiry:            rc.Expiry.Time().UTC(),
	}
	if rc.IssuedAt != nil {
		c.IssuedAt = rc.IssuedAt.Time().UTC()
	}
	if p := k.Pod; p != nil {
		if !isDNS1123Subdomain(p.Name) {
			return Claims{}, fmt.Errorf("%w: pod name %q is not a DNS-1123 subdomain", ErrNotServiceAccount, detail(p.Name))
		}
		if !validUID(p.UID) {
			return Claims{}, fmt.Errorf("%w: missing or invalid pod uid", ErrNotServiceAccount)
		}
		c.Pod, c.PodUID = p.Name, p.UID
	}
	if n := k.Node; n != nil {
		if !isDNS1123Subdomain(n.Name) {
			return Claims{}, fmt.Errorf("%w: node name %q is not a DNS-1123 subdomain", ErrNotServiceAccount, detail(n.Name))
		}
		c.Node = n.Name
	}
	return c, nil
}

// validUID accepts what kube-apiserver puts in uid claims (UUIDs) without
// insisting on the UUID format: 1..128 printable ASCII bytes.
func validUID(s string) bool {
	if s == "" || len(s) > maxUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
