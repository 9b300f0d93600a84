// Package secrets seals registry credentials and signing keys at rest with
// AES-256-GCM envelope encryption: every secret gets its own random data
// key, which is itself sealed with the master key. A sealed blob names the
// master key it needs (by id), so master keys can be rotated later.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length: AES-256.
const KeySize = 32

// format: version(1) | kidLen(1) | kid | dekNonce(12) | sealedDEK(32+16) | nonce(12) | ciphertext+tag
const formatV1 = 1

// Sealer encrypts and decrypts secrets with a master key.
type Sealer struct {
	kid  string
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte master key.
func New(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != KeySize {
		return nil, fmt.Errorf("master key: want %d bytes, got %d", KeySize, len(masterKey))
	}
	aead, err := newGCM(masterKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(masterKey)
	return &Sealer{kid: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// KeyID names the master key without revealing it.
func (s *Sealer) KeyID() string { return s.kid }

// Seal encrypts plaintext. aad binds the sealed blob to its owner (e.g. a
// credential id) so a blob copied to another row does not open.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	dekAEAD, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	out := []byte{formatV1, byte(len(s.kid))}
	out = append(out, s.kid...)
	dekNonce := randNonce()
	out = append(out, dekNonce...)
	out = s.aead.Seal(out, dekNonce, dek, []byte(s.kid))
	nonce := randNonce()
	out = append(out, nonce...)
	return dekAEAD.Seal(out, nonce, plaintext, aad), nil
}

// ErrWrongKey means the blob was sealed with another master key.
var ErrWrongKey = errors.New("sealed with a different master key")

// Open decrypts a blob made by Seal with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != formatV1 {
		return nil, errors.New("open: not a sealed secret")
	}
	kl := int(sealed[1])
	const ns = 12
	dekLen := KeySize + 16
	if len(sealed) < 2+kl+ns+dekLen+ns+16 {
		return nil, errors.New("open: sealed secret truncated")
	}
	kid := string(sealed[2 : 2+kl])
	if kid != s.kid {
		return nil, fmt.Errorf("open: master key %s: %w", kid, ErrWrongKey)
	}
	p := sealed[2+kl:]
	dek, err := s.aead.Open(nil, p[:ns], p[ns:ns+dekLen], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("open: data key: %w", err)
	}
	p = p[ns+dekLen:]
	dekAEAD, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	pt, err := dekAEAD.Open(nil, p[:ns], p[ns:], aad)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

func randNonce() []byte {
	n := make([]byte, 12)
	_, _ = rand.Read(n) // crypto/rand.Read never fails on supported platforms
	return n
}

// LoadOrCreateKeyFile reads a hex-encoded master key from path, creating it
// with a fresh random key (mode 0600) when it does not exist. created tells
// whether a new key was made.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("generate master key: %w", err)
		}
		if err := WriteFileExclusive(path, []byte(hex.EncodeToString(key)+"\n")); err != nil {
			return nil, false, fmt.Errorf("write master key: %w", err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read master key: %w", err)
	}
	key, err = ParseKey(string(b))
	if err != nil {
		return nil, false, fmt.Errorf("master key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("master key %s: mode %v is readable by others, want 0600", path, fi.Mode().Perm())
	}
	return key, false, nil
}

// ParseKey decodes a hex-encoded 32-byte key (as in a key file or
// PULLGATE_MASTER_KEY).
func ParseKey(s string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not hex")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("want %d bytes (%d hex digits), got %d bytes", KeySize, 2*KeySize, len(key))
	}
	return key, nil
}

// WriteFileExclusive creates path with mode 0600 and writes data, failing if
// it exists. The file is synced before return so a crash cannot leave a
// half-written key behind a successful start.
func WriteFileExclusive(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
