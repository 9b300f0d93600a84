// Package credential defines the secret material of a registry credential,
// how it is sealed for the store, and how each kind of credential becomes
// what the hub presents to an upstream registry. Secret never leaves the
// hub: it has no String method that prints it, redacts itself in JSON and
// slog, and is only ever marshalled (in its wire form) to be sealed.
package credential

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
	// KindECR is Amazon ECR: AWS access keys (optionally assuming a role)
	// from which the hub gets 12-hour authorization tokens itself, or a
	// pasted authorization token with its expiry.
	KindECR = "ecr"
	// KindACR is Azure Container Registry: a service principal (tenant,
	// client id, client secret) exchanged for ACR refresh tokens, or a
	// username and password (admin user, repository token).
	KindACR = "acr"
	// KindGCP is Google Container Registry / Artifact Registry: a
	// service-account JSON key (username _json_key or _json_key_base64) or
	// an OAuth2 access token (username oauth2accesstoken).
	KindGCP = "gcp"
)

// Kinds lists the kinds this hub understands.
var Kinds = []string{KindBasic, KindToken, KindECR, KindACR, KindGCP}

// ValidKind reports whether kind is one of Kinds.
func ValidKind(kind string) bool { return slices.Contains(Kinds, kind) }

// tokenUser is sent as the username of a token credential without one:
// registries that take a PAT as password ignore the username.
const tokenUser = "pullgate"

// MaxSecretLen bounds the secret a user may store.
const MaxSecretLen = 64 << 10

// Secret is the sealed part of a credential: everything a kind needs to
// authenticate, sealed and versioned as one.
type Secret struct {
	// Password is the password or token of basic, token and gcp
	// credentials, the pasted token of an ecr credential, the password of
	// an acr admin user or repository token.
	Password string
	// AWS holds the access keys of an ecr credential that fetches its own
	// authorization tokens.
	AWS *AWSKeys
	// Azure holds the service principal of an acr credential.
	Azure *AzureSP
	// ExpiresAt is when a pasted token stops working (ecr).
	ExpiresAt time.Time
}

// AWSKeys are the AWS credentials of an ecr credential.
type AWSKeys struct {
	AccessKeyID     string
	SecretAccessKey string
	// RoleARN, when set, is assumed (STS AssumeRole) with the keys; the
	// role's credentials fetch the ECR tokens.
	RoleARN    string
	ExternalID string
	// Region overrides the region taken from the ECR host.
	Region string
}

// AzureSP is a Microsoft Entra ID (Azure AD) service principal.
type AzureSP struct {
	TenantID     string
	ClientID     string
	ClientSecret string
}

// GoString hides the secret from %#v.
func (Secret) GoString() string { return "credential.Secret{REDACTED}" }

// String hides the secret from %v and %s.
func (Secret) String() string { return "REDACTED" }

// LogValue hides the secret from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON hides the secret from encoding/json; sealing uses its own
// wire form.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// GoString hides the keys from %#v.
func (AWSKeys) GoString() string { return "credential.AWSKeys{REDACTED}" }

// String hides the keys from %v and %s.
func (AWSKeys) String() string { return "REDACTED" }

// LogValue hides the keys from slog.
func (AWSKeys) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON hides the keys from encoding/json.
func (AWSKeys) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// GoString hides the service principal from %#v.
func (AzureSP) GoString() string { return "credential.AzureSP{REDACTED}" }

// String hides the service principal from %v and %s.
func (AzureSP) String() string { return "REDACTED" }

// LogValue hides the service principal from slog.
func (AzureSP) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON hides the service principal from encoding/json.
func (AzureSP) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// values are the secret strings of s, for redaction.
func (s Secret) values() []string {
	out := []string{s.Password}
	if s.AWS != nil {
		out = append(out, s.AWS.SecretAccessKey)
	}
	if s.Azure != nil {
		out = append(out, s.Azure.ClientSecret)
	}
	return out
}

// wireSecret is the sealed JSON form. Version-1 secrets were
// {"password": "..."}, which still decodes.
type wireSecret struct {
	Password  string     `json:"password,omitempty"`
	AWS       *wireAWS   `json:"aws,omitempty"`
	Azure     *wireAzure `json:"azure,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type wireAWS struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	RoleARN         string `json:"role_arn,omitempty"`
	ExternalID      string `json:"external_id,omitempty"`
	Region          string `json:"region,omitempty"`
}

type wireAzure struct {
	TenantID     string `json:"tenant_id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func toWire(s Secret) wireSecret {
	w := wireSecret{Password: s.Password}
	if s.AWS != nil {
		a := wireAWS(*s.AWS)
		w.AWS = &a
	}
	if s.Azure != nil {
		a := wireAzure(*s.Azure)
		w.Azure = &a
	}
	if !s.ExpiresAt.IsZero() {
		t := s.ExpiresAt.UTC()
		w.ExpiresAt = &t
	}
	return w
}

func fromWire(w wireSecret) Secret {
	s := Secret{Password: w.Password}
	if w.AWS != nil {
		a := AWSKeys(*w.AWS)
		s.AWS = &a
	}
	if w.Azure != nil {
		a := AzureSP(*w.Azure)
		s.Azure = &a
	}
	if w.ExpiresAt != nil {
		s.ExpiresAt = *w.ExpiresAt
	}
	return s
}

func aad(c store.Credential) []byte {
	return []byte("pullgate credential\x00" + c.WorkspaceID + "\x00" + c.Name)
}

// Seal encrypts s for c. The sealed blob opens only for the same workspace
// and credential name.
func Seal(sl *secrets.Sealer, c store.Credential, s Secret) (store.Sealed, error) {
	b, err := json.Marshal(toWire(s))
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
	var w wireSecret
	if err := json.Unmarshal(b, &w); err != nil {
		// Not the decoder's message: it could quote the plaintext.
		return Secret{}, fmt.Errorf("open credential %s: decode: not a sealed credential secret", c.Name)
	}
	return fromWire(w), nil
}

// Authenticator turns a credential whose secret is presented as it is
// (basic, token, gcp, acr with a password, ecr with a pasted token) into
// what go-containerregistry's transport presents to the upstream. Kinds
// that obtain short-lived tokens (ecr with AWS keys, acr with a service
// principal) need a Source; for them the returned authenticator fails.
func Authenticator(c store.Credential, s Secret) authn.Authenticator {
	cfg, err := staticConfig(c, s)
	if err != nil {
		return errAuthenticator{err}
	}
	return authn.FromConfig(*cfg)
}

// staticConfig is the upstream login of credentials that need no token
// exchange of the hub's own.
func staticConfig(c store.Credential, s Secret) (*authn.AuthConfig, error) {
	switch {
	case c.Kind == KindECR && s.AWS != nil, c.Kind == KindACR && s.Azure != nil:
		return nil, &Error{Credential: c.Name, Msg: "kind " + c.Kind + " needs a token exchange (credential.Source)"}
	case c.Kind == KindECR:
		return &authn.AuthConfig{Username: ecrUser, Password: s.Password}, nil
	}
	user := c.Username
	if user == "" && c.Kind == KindToken {
		user = tokenUser
	}
	if c.Kind == KindGCP && user == "" {
		user = gcpJSONKey
	}
	return &authn.AuthConfig{Username: user, Password: s.Password}, nil
}

type errAuthenticator struct{ err error }

func (e errAuthenticator) Authorization() (*authn.AuthConfig, error) { return nil, e.err }

// Error is a credential that cannot be used as stored (a pasted token that
// expired) or whose token exchange failed. Its message names the
// credential and never carries secret material.
type Error struct {
	Credential string
	Msg        string
	// Temporary is set when the identity provider could not be reached or
	// failed (retrying may help), as opposed to refusing the credential.
	Temporary bool
	// Expired is set for a pasted token past its expiry.
	Expired bool
}

func (e *Error) Error() string { return "registry credential " + e.Credential + ": " + e.Msg }
