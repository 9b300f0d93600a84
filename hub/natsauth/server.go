package natsauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/pullgate/pullgate/hub/secrets"
)

// Credentials are what the hub needs to run the callout: the account key
// that signs authorizations and its own NATS password. They live in the
// data dir (0600) and are created on first use.
type Credentials struct {
	Issuer   nkeys.KeyPair
	Password string
}

// IssuerPublic is the issuer to configure in the server's auth_callout.
func (c Credentials) IssuerPublic() string {
	pub, _ := c.Issuer.PublicKey()
	return pub
}

// LoadOrCreate reads (or creates) <dir>/nats-issuer.nk and
// <dir>/nats-hub.password.
func LoadOrCreate(dir string) (Credentials, error) {
	seedPath, pwPath := filepath.Join(dir, "nats-issuer.nk"), filepath.Join(dir, "nats-hub.password")
	seed, err := os.ReadFile(seedPath)
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			return Credentials{}, fmt.Errorf("create NATS issuer key: %w", err)
		}
		if seed, err = kp.Seed(); err != nil {
			return Credentials{}, err
		}
		if err := secrets.WriteFileExclusive(seedPath, seed); err != nil {
			return Credentials{}, fmt.Errorf("write NATS issuer key: %w", err)
		}
	} else if err != nil {
		return Credentials{}, fmt.Errorf("read NATS issuer key: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return Credentials{}, fmt.Errorf("NATS issuer key %s: %w", seedPath, err)
	}
	pw, err := os.ReadFile(pwPath)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		pw = []byte(base64.RawURLEncoding.EncodeToString(b))
		if err := secrets.WriteFileExclusive(pwPath, pw); err != nil {
			return Credentials{}, fmt.Errorf("write NATS hub password: %w", err)
		}
	} else if err != nil {
		return Credentials{}, fmt.Errorf("read NATS hub password: %w", err)
	}
	return Credentials{Issuer: kp, Password: strings.TrimSpace(string(pw))}, nil
}

// Configure sets an embedded server's options for the callout: the hub's
// own user and the auth_callout block.
func (c Credentials) Configure(o *natsserver.Options) {
	o.Users = append(o.Users, &natsserver.User{Username: HubUser, Password: c.Password})
	o.AuthCallout = &natsserver.AuthCallout{Issuer: c.IssuerPublic(), AuthUsers: []string{HubUser}}
}

// ConfigBlock is the same for an external nats-server's configuration file.
func (c Credentials) ConfigBlock() string {
	return fmt.Sprintf(`# pullgate: the hub decides every agent connection (auth callout).
authorization {
  timeout: 5
  users: [ { user: %q, password: %q } ]
  auth_callout {
    issuer: %q
    auth_users: [ %q ]
  }
}
`, HubUser, c.Password, c.IssuerPublic(), HubUser)
}
