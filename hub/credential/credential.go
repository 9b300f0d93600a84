// Package credential defines the secret material of a registry credential
// and how it is sealed for the store. Secret never leaves the hub: it has no
// String method that prints it and is only ever marshalled to be sealed.
package credential

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
)

// Kinds of credentials.
const (
	// KindBasic is a username and password.
	KindBasic = "basic"
	// KindToken is an access token (GitHub PAT, Docker Hub access token,
	// GitLab deploy token) used as the password; the username is optional.
	KindToken = "token"
)

// Kinds lists the kinds this hub understands.
var Kinds = []string{KindBasic, KindToken}

// tokenUser is sent as the username of a token credential without one:
// registries that take a PAT as password ignore the username.
const tokenUser = "pullgate"

// MaxSecretLen bounds the secret a user may store.
const MaxSecretLen = 64 << 10

// Secret is the sealed part of a credential.
type Secret struct {
	Password string `json:"password"`
}

// GoString hides the secret from %#v.
func (Secret) GoString() string { return "credential.Secret{REDACTED}" }

// String hides the secret from %v and %s.
func (Secret) String() string { return "REDACTED" }

// Validate checks a credential's kind, username and secret together.
func Validate(kind, username string, s Secret) error {
	if !slices.Contains(Kinds, kind) {
		return fmt.Errorf("kind %q: want one of %v", kind, Kinds)
	}
	if kind == KindBasic && username == "" {
		return fmt.Errorf("kind basic needs a username")
	}
	if s.Password == "" {
		return fmt.Errorf("empty password")
	}
	if len(s.Password) > MaxSecretLen {
		return fmt.Errorf("password longer than %d bytes", MaxSecretLen)
	}
	return nil
}

func aad(c store.Credential) []byte {
	return []byte("pullgate credential\x00" + c.WorkspaceID + "\x00" + c.Name)
}

// Seal encrypts s for c. The sealed blob opens only for the same workspace
// and credential name.
func Seal(sl *secrets.Sealer, c store.Credential, s Secret) (store.Sealed, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("seal credential %s: %w", c.Name, err)
	}
	return sl.Seal(b, aad(c))
}

// Open decrypts a sealed secret of c.
func Open(sl *secrets.Sealer, c store.Credential, sealed store.Sealed) (Secret, error) {
	b, err := sl.Open(sealed, aad(c))
	if err != nil {
		return Secret{}, fmt.Errorf("open credential %s: %w", c.Name, err)
	}
	var s Secret
	if err := json.Unmarshal(b, &s); err != nil {
		return Secret{}, fmt.Errorf("open credential %s: decode: %w", c.Name, err)
	}
	return s, nil
}

// Authenticator turns a credential into what go-containerregistry's
// transport presents to the upstream.
func Authenticator(c store.Credential, s Secret) authn.Authenticator {
	user := c.Username
	if user == "" && c.Kind == KindToken {
		user = tokenUser
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: s.Password})
}
