package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
)

func signingKeyAAD(kid string) []byte { return []byte("pullgate signing key\x00" + kid) }

// signingKeys holds the install-token signing keys (private keys sealed).
type signingKeys interface {
	InitSigningKeys(ctx context.Context, newKey func() (store.SigningKey, error)) ([]store.SigningKey, error)
}

// loadKeyring loads every signing key from the store into a keyring, the
// newest signing, and creates the first key on a fresh hub (once, also when
// several replicas start together on one database).
func loadKeyring(ctx context.Context, s signingKeys, sealer *secrets.Sealer) (*token.Keyring, error) {
	keys, err := s.InitSigningKeys(ctx, func() (store.SigningKey, error) {
		k, err := token.NewKey()
		if err != nil {
			return store.SigningKey{}, err
		}
		sealed, err := sealer.Seal(k.Private, signingKeyAAD(k.KID))
		if err != nil {
			return store.SigningKey{}, fmt.Errorf("seal signing key: %w", err)
		}
		return store.SigningKey{KID: k.KID, Public: k.Private.Public().(ed25519.PublicKey), Private: sealed, CreatedAt: time.Now().UTC()}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	ring := token.NewKeyring()
	for i, sk := range keys {
		priv, err := sealer.Open(sk.Private, signingKeyAAD(sk.KID))
		if err != nil {
			return nil, fmt.Errorf("open signing key %s (is this the master key the hub was set up with?): %w", sk.KID, err)
		}
		ring.Add(token.Key{KID: sk.KID, Private: ed25519.PrivateKey(priv)}, i == len(keys)-1)
	}
	return ring, nil
}

// loadOrCreateAdminToken reads the admin token file, creating one (0600) on
// the first start. Like the master key, an existing file must not be
// readable by others: the token is the whole admin API.
func loadOrCreateAdminToken(path string) (string, bool, error) {
	fi, err := os.Stat(path)
	if err == nil {
		if err := checkSecretMode(path, fi); err != nil {
			return "", false, err
		}
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", false, err
		}
		tok := "pga_" + hex.EncodeToString(raw)
		if err := secrets.WriteFileExclusive(path, []byte(tok+"\n")); err != nil {
			return "", false, fmt.Errorf("write admin token: %w", err)
		}
		return tok, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", false, fmt.Errorf("admin token %s: shorter than 16 characters", path)
	}
	return tok, false, nil
}

// checkSecretMode refuses a secret file that others can read: no bits for
// others ever, and group read only for a root-owned file (a Kubernetes
// Secret volume gives 0440 root:fsGroup), as PostgreSQL allows for its
// key file.
func checkSecretMode(path string, fi os.FileInfo) error {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 || (perm&0o070 != 0 && !ownedByRoot(fi)) {
		return fmt.Errorf("admin token %s: mode %v is readable by others, want 0600 (run chmod 600 %s)", path, perm, path)
	}
	return nil
}
