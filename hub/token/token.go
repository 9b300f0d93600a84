// Package token mints and verifies install tokens: compact JWS (JWT) signed
// with Ed25519, carrying a key id so signing keys can be rotated. A valid
// signature and expiry is only half of the check: the proxy also compares
// the claims with live state (install enabled, generation current).
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// MaxLen bounds a token before any parsing work is done.
const MaxLen = 8 << 10

// Issuer is the "iss" claim of every install token.
const Issuer = "pullgate"

// Token verification errors. Each wraps ErrInvalid.
var (
	ErrInvalid    = errors.New("invalid install token")
	ErrMalformed  = fmt.Errorf("%w: malformed", ErrInvalid)
	ErrExpired    = fmt.Errorf("%w: expired", ErrInvalid)
	ErrUnknownKey = fmt.Errorf("%w: signed by an unknown key", ErrInvalid)
	ErrSignature  = fmt.Errorf("%w: bad signature", ErrInvalid)
)

// Claims are what an install token grants.
type Claims struct {
	Issuer    string   `json:"iss"`
	ID        string   `json:"jti"`
	Install   string   `json:"inst"`
	Workspace string   `json:"ws"`
	Cluster   string   `json:"cl,omitempty"`
	Node      string   `json:"node,omitempty"`
	Repos     []string `json:"repos,omitempty"`
	// Scoped marks a token the hub's token endpoint narrowed to a
	// requested scope: it is good only for the repository names in Scope
	// (as the client writes them in the path), on top of its install's
	// allow-list. An unscoped token is good for the whole allow-list.
	Scoped     bool     `json:"scoped,omitempty"`
	Scope      []string `json:"scope,omitempty"`
	Generation int64    `json:"gen"`
	// Lease is the Akash lease namespace a token of a lease copy of an
	// install was minted for (store.Install.Lease): the proxy refuses it
	// once that lease namespace is gone from the cluster.
	Lease    string `json:"lease,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
}

// ExpiresAt is the expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0) }

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	KID string `json:"kid"`
}

// Key is an Ed25519 signing key with its id.
type Key struct {
	KID     string
	Private ed25519.PrivateKey
}

// NewKey generates a signing key.
func NewKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	return KeyFromPrivate(priv), nil
}

// KeyFromPrivate derives the key id from the public half.
func KeyFromPrivate(priv ed25519.PrivateKey) Key {
	return Key{KID: KID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

// KID is the key id of a public key: a short hash, stable across restarts.
func KID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Keyring signs with its newest key and verifies with all keys it holds.
// It is safe for concurrent use; keys may be added while it serves.
type Keyring struct {
	mu      sync.RWMutex
	signing Key
	public  map[string]ed25519.PublicKey
	now     func() time.Time
}

// Option configures a Keyring.
type Option func(*Keyring)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(k *Keyring) { k.now = now } }

// NewKeyring returns an empty keyring; add keys with Add.
func NewKeyring(opts ...Option) *Keyring {
	k := &Keyring{public: map[string]ed25519.PublicKey{}, now: time.Now}
	for _, o := range opts {
		o(k)
	}
	return k
}

// Add makes key available for verification and, when sign is set, the key
// new tokens are signed with.
func (k *Keyring) Add(key Key, sign bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.public[key.KID] = key.Private.Public().(ed25519.PublicKey)
	if sign {
		k.signing = key
	}
}

// AddPublic makes a public key available for verification only.
func (k *Keyring) AddPublic(pub ed25519.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.public[KID(pub)] = pub
}

// Mint signs claims valid for ttl from now. Issuer, ID, IssuedAt and Expiry
// are set here.
func (k *Keyring) Mint(c Claims, ttl time.Duration) (string, Claims, error) {
	k.mu.RLock()
	key := k.signing
	k.mu.RUnlock()
	if key.Private == nil {
		return "", Claims{}, errors.New("mint token: no signing key")
	}
	if ttl <= 0 {
		return "", Claims{}, fmt.Errorf("mint token: ttl %v must be positive", ttl)
	}
	now := k.now()
	c.Issuer = Issuer
	c.IssuedAt = now.Unix()
	c.Expiry = now.Add(ttl).Unix()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	c.ID = base64.RawURLEncoding.EncodeToString(jti[:])

	h, _ := json.Marshal(header{Alg: "EdDSA", Typ: "JWT", KID: key.KID})
	p, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	sig := ed25519.Sign(key.Private, []byte(signing))
	return signing + "." + enc.EncodeToString(sig), c, nil
}

// Verify checks form, key, signature and expiry, and returns the claims.
// With ErrExpired it also returns the (authentic) claims.
func (k *Keyring) Verify(tok string) (Claims, error) {
	if len(tok) > MaxLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLen)
	}
	// base64's decoders skip CR and LF even in strict mode: without this
	// check one token would verify in many spellings.
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return Claims{}, fmt.Errorf("%w: character outside base64url at byte %d", ErrMalformed, i)
		}
	}
	first := strings.IndexByte(tok, '.')
	last := strings.LastIndexByte(tok, '.')
	if first <= 0 || last == first || last == len(tok)-1 {
		return Claims{}, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(tok[:first])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: header encoding", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return Claims{}, fmt.Errorf("%w: header", ErrMalformed)
	}
	if h.Alg != "EdDSA" {
		// Clipped: the message reaches clients and logs (found by FuzzVerify).
		alg := h.Alg
		if len(alg) > 32 {
			alg = alg[:32] + "..."
		}
		return Claims{}, fmt.Errorf("%w: algorithm %q, want EdDSA", ErrMalformed, alg)
	}
	k.mu.RLock()
	pub, ok := k.public[h.KID]
	k.mu.RUnlock()
	if !ok {
		return Claims{}, ErrUnknownKey
	}
	sig, err := enc.DecodeString(tok[last+1:])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Claims{}, fmt.Errorf("%w: signature encoding", ErrMalformed)
	}
	if !ed25519.Verify(pub, []byte(tok[:last]), sig) {
		return Claims{}, ErrSignature
	}
	pb, err := enc.DecodeString(tok[first+1 : last])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims encoding", ErrMalformed)
	}
	var c Claims
	if err := json.Unmarshal(pb, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims", ErrMalformed)
	}
	if c.Issuer != Issuer || c.Install == "" || c.Workspace == "" {
		return Claims{}, fmt.Errorf("%w: missing issuer, install or workspace", ErrMalformed)
	}
	if !k.now().Before(c.ExpiresAt()) {
		// The claims are authentic: returned with the error so that a
		// refusal can be audited against the token's install.
		return c, ErrExpired
	}
	return c, nil
}
