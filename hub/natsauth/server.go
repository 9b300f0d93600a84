package natsauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/pkg/wire"
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

// hubResponseTTL bounds how long the hub may answer a request it received.
const hubResponseTTL = time.Minute

// HubPermissions are the hub user's rights: subscribe anywhere, but
// publish only revocations and one reply to each request it received (the
// auth callout's and the agents'). Which replies the token service sends
// at all is its own check (hub/tokensvc reply.go); this bounds the rest.
func HubPermissions() *natsserver.Permissions {
	return &natsserver.Permissions{
		Publish:  &natsserver.SubjectPermission{Allow: []string{wire.RevokeSubject("*")}},
		Response: &natsserver.ResponsePermission{MaxMsgs: 1, Expires: hubResponseTTL},
	}
}

// Configure sets an embedded server's options for the callout: the hub's
// own user and the auth_callout block.
func (c Credentials) Configure(o *natsserver.Options) {
	o.Users = append(o.Users, &natsserver.User{Username: HubUser, Password: c.Password, Permissions: HubPermissions()})
	o.AuthCallout = &natsserver.AuthCallout{Issuer: c.IssuerPublic(), AuthUsers: []string{HubUser}}
}

// StalePingInterval and StalePingMax are the liveness settings ConfigBlock
// gives an external server: a client that answers none of StalePingMax
// pings, StalePingInterval apart, is disconnected.
const (
	StalePingInterval = 5 * time.Second
	StalePingMax      = 3
)

// TLSFiles are an external nats-server's TLS settings for ConfigBlock.
type TLSFiles struct {
	Cert, Key, CA string
}

// ConfigBlock is the same for an external nats-server's configuration
// file, with a tls block when t names a key pair.
func (c Credentials) ConfigBlock(t TLSFiles) string {
	var b strings.Builder
	if t.Cert != "" {
		b.WriteString("# pullgate: agents connect with tls:// only; their credentials never cross in clear text.\n")
		fmt.Fprintf(&b, "tls {\n  cert_file: %q\n  key_file: %q\n", t.Cert, t.Key)
		if t.CA != "" {
			fmt.Fprintf(&b, "  ca_file: %q\n", t.CA)
		}
		b.WriteString("  min_version: \"1.2\"\n  timeout: 5\n}\n")
	} else {
		b.WriteString("# pullgate: WARNING no tls block (nats-config --tls-cert/--tls-key): agents' join tokens,\n" +
			"# node secrets and install tokens would cross the network in clear text.\n")
	}
	// The server's own liveness check of its clients, much shorter than
	// nats-server's 2m x 2: a hub replica that hangs (its connection open,
	// nothing answered) keeps its queue subscriptions, and the servers keep
	// routing a share of agents' token requests and of the auth callout to
	// it until they drop the connection.
	fmt.Fprintf(&b, "# pullgate: drop a hung client (a hub replica that stopped answering) after %d unanswered\n"+
		"# pings, so queue groups stop offering it agents' requests and connections.\nping_interval: %q\nping_max: %d\n",
		StalePingMax, StalePingInterval.String(), StalePingMax)
	p := HubPermissions()
	fmt.Fprintf(&b, `# pullgate: the hub decides every agent connection (auth callout).
authorization {
  timeout: 5
  users: [ {
    user: %q, password: %q
    permissions: { publish: { allow: [ %q ] }, allow_responses: { max: %d, expires: %q } }
  } ]
  auth_callout {
    issuer: %q
    auth_users: [ %q ]
  }
}
`, HubUser, c.Password, p.Publish.Allow[0], p.Response.MaxMsgs, p.Response.Expires.String(), c.IssuerPublic(), HubUser)
	return b.String()
}
