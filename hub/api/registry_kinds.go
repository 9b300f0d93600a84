package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/store"
)

// ECRParams are the non-secret parameters of an ecr credential. With an
// access key id the password is the secret access key and the hub fetches
// 12-hour registry tokens itself; without one the password is a pasted
// token (`aws ecr get-login-password`) that expires.
type ECRParams struct {
	AccessKeyID string `json:"access_key_id,omitempty"`
	RoleARN     string `json:"role_arn,omitempty"`
	ExternalID  string `json:"external_id,omitempty"`
	Region      string `json:"region,omitempty"`
	// TokenExpiresAt is the expiry of a pasted token; by default read from
	// the token, else 12 hours from now.
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
}

// ACRParams are the non-secret parameters of an acr credential with a
// service principal; the password is its client secret.
type ACRParams struct {
	TenantID string `json:"tenant_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// LogValue shows only which parameters are set.
func (p ECRParams) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("access_key_id", p.AccessKeyID != ""), slog.Bool("role_arn", p.RoleARN != ""))
}

func kindInput(kind, host, username string, password Password, e *ECRParams, a *ACRParams) credential.Input {
	in := credential.Input{Kind: kind, Host: host, Username: username, Password: string(password)}
	if e != nil {
		in.AWSAccessKeyID, in.AWSRoleARN, in.AWSExternalID, in.AWSRegion = e.AccessKeyID, e.RoleARN, e.ExternalID, e.Region
		if e.TokenExpiresAt != nil {
			in.TokenExpiresAt = *e.TokenExpiresAt
		}
	}
	if a != nil {
		in.AzureTenantID, in.AzureClientID = a.TenantID, a.ClientID
	}
	return in
}

// prepareErr turns a refused credential input into a 400; the message
// never carries secret material.
func prepareErr(err error) error {
	var ie *credential.InputError
	if errors.As(err, &ie) {
		return badRequest("%s", ie.Msg)
	}
	return err
}

// prepareCreate checks a new credential of any kind (the kind is inferred
// from the host when not given).
func (s *server) prepareCreate(req CreateRegistryRequest, host string) (credential.Prepared, error) {
	p, err := credential.Prepare(kindInput(req.Kind, host, req.Username, req.Password, req.ECR, req.ACR), s.now())
	return p, prepareErr(err)
}

// needsNewSecret reports whether an update replaces the secret: a new
// password, new kind parameters, or (kind gcp) a username that changes how
// the password is read.
func needsNewSecret(c store.Credential, req UpdateRegistryRequest) bool {
	return req.Password != nil || req.ECR != nil || req.ACR != nil ||
		(c.Kind == credential.KindGCP && req.Username != nil && *req.Username != c.Username)
}

// prepareUpdate builds the new secret version of c. Kind parameters that
// are not given are carried over from the stored secret.
func (s *server) prepareUpdate(ctx context.Context, c store.Credential, username string, req UpdateRegistryRequest) (credential.Prepared, error) {
	if req.Password == nil {
		switch {
		case req.ECR != nil || req.ACR != nil:
			return credential.Prepared{}, badRequest("ecr and acr parameters change secret material: give the password (secret access key, client secret or token) too")
		default:
			return credential.Prepared{}, badRequest("username: changing the username of a gcp credential changes how its password is read: give the password too")
		}
	}
	e, a := req.ECR, req.ACR
	if (c.Kind == credential.KindECR && e == nil) || (c.Kind == credential.KindACR && a == nil) {
		cur, err := s.openSecret(ctx, c)
		if err != nil {
			return credential.Prepared{}, err
		}
		if cur.AWS != nil && e == nil {
			e = &ECRParams{AccessKeyID: cur.AWS.AccessKeyID, RoleARN: cur.AWS.RoleARN, ExternalID: cur.AWS.ExternalID, Region: cur.AWS.Region}
		}
		if cur.Azure != nil && a == nil {
			a = &ACRParams{TenantID: cur.Azure.TenantID, ClientID: cur.Azure.ClientID}
		}
	}
	if c.Kind == credential.KindACR && a != nil && a.ClientID != "" && req.Username == nil {
		username = "" // the service principal's client id, set by Prepare
	}
	p, err := credential.Prepare(kindInput(c.Kind, c.Host, username, *req.Password, e, a), s.now())
	return p, prepareErr(err)
}

func (s *server) openSecret(ctx context.Context, c store.Credential) (credential.Secret, error) {
	sealed, err := s.d.Store.CredentialSecret(ctx, c.ID, c.Version)
	if err != nil {
		return credential.Secret{}, err
	}
	return credential.Open(s.d.Sealer, c, sealed)
}

// describe is the API view of c with how it authenticates; it reads the
// secret only for kinds whose description depends on it (never returned).
func (s *server) describe(ctx context.Context, c store.Credential) Registry {
	var sec credential.Secret
	if credential.NeedsSecretToDescribe(c.Kind) {
		var err error
		if sec, err = s.openSecret(ctx, c); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "describe registry credential", slog.String("credential", c.Name), slog.String("error", err.Error()))
			v := registryView(c)
			v.Warnings = []string{"the stored secret could not be read; see the hub log"}
			return v
		}
	}
	return s.describeWith(c, sec)
}

func (s *server) describeWith(c store.Credential, sec credential.Secret) Registry {
	v := registryView(c)
	info := credential.Describe(c, sec, s.now())
	v.Auth, v.Warnings = info.Auth, info.Warnings
	if !info.ExpiresAt.IsZero() {
		t := info.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	return v
}

// changeRegistryKind gives c another kind. The secret's form depends on
// the kind, so a new password is required and the old kind's parameters
// are not carried over; the username is kept only between kinds where it
// means the same (basic, token, acr with a username).
func (s *server) changeRegistryKind(w http.ResponseWriter, r *http.Request, c store.Credential, kind string, req UpdateRegistryRequest, u store.CredentialUpdate) error {
	if req.Password == nil {
		return badRequest("kind: changing kind %s to %s replaces the secret: give the password too", c.Kind, kind)
	}
	plain := func(k string) bool {
		return k == credential.KindBasic || k == credential.KindToken || k == credential.KindACR
	}
	username := ""
	switch {
	case req.Username != nil:
		username = *req.Username
	case plain(c.Kind) && plain(kind) && req.ACR == nil:
		username = c.Username
	}
	p, err := credential.Prepare(kindInput(kind, c.Host, username, *req.Password, req.ECR, req.ACR), s.now())
	if err != nil {
		return prepareErr(err)
	}
	u.Kind, u.Username = &p.Kind, &p.Username
	if u.Secret, err = credential.Seal(s.d.Sealer, c, p.Secret); err != nil {
		return err
	}
	c, err = s.d.Store.UpdateCredential(r.Context(), r.PathValue("ws"), r.PathValue("name"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.describeWith(c, p.Secret))
	return nil
}
