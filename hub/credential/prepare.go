package credential

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pullgate/pullgate/hub/store"
)

// Usernames with a fixed meaning.
const (
	ecrUser            = "AWS"
	gcpJSONKey         = "_json_key"
	gcpJSONKeyBase64   = "_json_key_base64"
	gcpOAuthToken      = "oauth2accesstoken"
	acrExchangeUser    = "00000000-0000-0000-0000-000000000000"
	ecrTokenLifetime   = 12 * time.Hour
	maxPastedTokenLife = 7 * 24 * time.Hour
)

// Auth modes, as Describe reports them.
const (
	AuthPassword      = "password"
	AuthToken         = "token"
	AuthAWSKeys       = "aws_keys"
	AuthAWSAssumeRole = "aws_assume_role"
	AuthECRToken      = "ecr_token"
	AuthServicePrinc  = "service_principal"
	AuthJSONKey       = "json_key"
	AuthJSONKeyBase64 = "json_key_base64"
	AuthOAuthToken    = "oauth2_access_token"
)

// Input is what an operator (API, CLI) or an SDL gives for a credential.
// Password is always "the secret": a password or token, the AWS secret
// access key, the Azure client secret, a pasted ECR token or the
// service-account JSON.
type Input struct {
	Kind     string // "" infers it from Host
	Host     string // normalised credential host (may carry a repository prefix)
	Username string
	Password string

	AWSAccessKeyID string
	AWSRoleARN     string
	AWSExternalID  string
	AWSRegion      string
	// TokenExpiresAt is the expiry of a pasted ECR token (optional: read
	// from the token when it carries one, else 12 hours from now).
	TokenExpiresAt time.Time

	AzureTenantID string
	AzureClientID string
}

// Prepared is a validated credential: the kind and username to store and
// the secret to seal.
type Prepared struct {
	Kind     string
	Username string
	Secret   Secret
}

// InputError is a refused Input. Its message names the field and never
// carries secret material.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErr(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

var (
	accessKeyRE = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	roleARNRE   = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	externalRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	guidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	tenantRE    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$`)
)

// GCPUsernames are the usernames Google registries accept for kind gcp.
var GCPUsernames = []string{gcpJSONKey, gcpJSONKeyBase64, gcpOAuthToken}

// Prepare infers the kind when it is empty, checks the input as a whole
// for that kind, and returns what to store.
func Prepare(in Input, now time.Time) (Prepared, error) {
	kind, err := CheckParams(in)
	if err != nil {
		return Prepared{}, err
	}
	if in.Password == "" {
		return Prepared{}, inputErr("empty password")
	}
	if len(in.Password) > MaxSecretLen {
		return Prepared{}, inputErr("password longer than %d bytes", MaxSecretLen)
	}
	switch kind {
	case KindBasic:
		return Prepared{Kind: kind, Username: in.Username, Secret: Secret{Password: in.Password}}, nil
	case KindToken:
		return Prepared{Kind: kind, Username: in.Username, Secret: Secret{Password: in.Password}}, nil
	case KindECR:
		return prepareECR(in, now)
	case KindACR:
		return prepareACR(in)
	default:
		return prepareGCP(in)
	}
}

// CheckParams checks everything of in but the secret (in.Password is not
// looked at): the kind, inferred from the host when empty, the host for
// that kind, and the kind's other parameters. It returns the kind. Clients
// call it to refuse a bad command line before they read the secret;
// Prepare calls it first.
func CheckParams(in Input) (string, error) {
	kind := in.Kind
	if kind == "" {
		kind = InferKind(in.Host)
	}
	if !slices.Contains(Kinds, kind) {
		return "", inputErr("kind %q: want one of %v", clip(kind), Kinds)
	}
	if in.Host != "" {
		if err := CheckHost(kind, in.Host); err != nil {
			return "", &InputError{Msg: err.Error()}
		}
	}
	hasAWS := in.AWSAccessKeyID != "" || in.AWSRoleARN != "" || in.AWSExternalID != "" || in.AWSRegion != "" || !in.TokenExpiresAt.IsZero()
	hasAzure := in.AzureTenantID != "" || in.AzureClientID != ""
	if hasAWS && kind != KindECR {
		return "", inputErr("kind %s: ecr parameters (access key id, role, region, token expiry) are for kind ecr", kind)
	}
	if hasAzure && kind != KindACR {
		return "", inputErr("kind %s: acr parameters (tenant id, client id) are for kind acr", kind)
	}
	var err error
	switch kind {
	case KindBasic:
		if in.Username == "" {
			err = inputErr("kind basic needs a username")
		}
	case KindECR:
		err = checkECRParams(in)
	case KindACR:
		err = checkACRParams(in)
	case KindGCP:
		if in.Username != "" && !slices.Contains(GCPUsernames, in.Username) {
			err = inputErr("kind gcp: username %q: want one of %v", clip(in.Username), GCPUsernames)
		}
	}
	return kind, err
}

// checkECRParams checks an ecr credential's parameters but the secret.
func checkECRParams(in Input) error {
	if in.Username != "" && in.Username != ecrUser {
		return inputErr("kind ecr: username is always %s (give the AWS access key id as the access key id)", ecrUser)
	}
	if in.AWSAccessKeyID == "" {
		if in.AWSRoleARN != "" || in.AWSExternalID != "" || in.AWSRegion != "" {
			return inputErr("kind ecr: role, external id and region need an access key id (without one, the password is a pasted ECR token)")
		}
		return nil
	}
	if !accessKeyRE.MatchString(in.AWSAccessKeyID) {
		return inputErr("kind ecr: access key id is not an AWS access key id (16 to 128 uppercase letters and digits, e.g. AKIA...)")
	}
	if in.AWSRoleARN != "" && !roleARNRE.MatchString(in.AWSRoleARN) {
		return inputErr("kind ecr: role ARN %q: want arn:aws:iam::<account>:role/<name>", clip(in.AWSRoleARN))
	}
	if in.AWSExternalID != "" {
		if in.AWSRoleARN == "" {
			return inputErr("kind ecr: an external id needs a role ARN")
		}
		if len(in.AWSExternalID) < 2 || len(in.AWSExternalID) > 1224 || !externalRE.MatchString(in.AWSExternalID) {
			return inputErr("kind ecr: external id: 2 to 1224 letters, digits or +=,.@:/-")
		}
	}
	if in.AWSRegion != "" && !regionRE.MatchString(in.AWSRegion) {
		return inputErr("kind ecr: region %q is not an AWS region name (e.g. us-east-1)", clip(in.AWSRegion))
	}
	if !in.TokenExpiresAt.IsZero() {
		return inputErr("kind ecr: a token expiry is for pasted tokens, not access keys")
	}
	return nil
}

// checkACRParams checks an acr credential's parameters but the secret.
func checkACRParams(in Input) error {
	if in.AzureTenantID == "" && in.AzureClientID == "" {
		if in.Username == "" {
			return inputErr("kind acr needs a username (admin user or repository token name) with its password, or a service principal (tenant id and client id, with the client secret as password)")
		}
		return nil
	}
	if in.AzureTenantID == "" || in.AzureClientID == "" {
		return inputErr("kind acr: a service principal needs both a tenant id and a client id")
	}
	if !tenantRE.MatchString(in.AzureTenantID) {
		return inputErr("kind acr: tenant id %q: want a GUID or a domain name", clip(in.AzureTenantID))
	}
	if !guidRE.MatchString(in.AzureClientID) {
		return inputErr("kind acr: client id %q: want the application (client) id, a GUID", clip(in.AzureClientID))
	}
	if in.Username != "" && !strings.EqualFold(in.Username, in.AzureClientID) {
		return inputErr("kind acr: with a service principal the username is its client id; leave it empty")
	}
	return nil
}

// prepareECR builds an ecr secret; CheckParams has checked the parameters.
func prepareECR(in Input, now time.Time) (Prepared, error) {
	p := Prepared{Kind: KindECR, Username: ecrUser}
	if in.AWSAccessKeyID == "" {
		tok, exp := parseECRToken(in.Password)
		if tok == "" || strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
			return Prepared{}, inputErr("kind ecr: the pasted token is empty or contains white space (paste the output of `aws ecr get-login-password`)")
		}
		if !in.TokenExpiresAt.IsZero() {
			exp = in.TokenExpiresAt
		}
		if exp.IsZero() {
			exp = now.Add(ecrTokenLifetime)
		}
		if !exp.After(now) {
			return Prepared{}, inputErr("kind ecr: the pasted token expired at %s", exp.UTC().Format(time.RFC3339))
		}
		if exp.Sub(now) > maxPastedTokenLife {
			return Prepared{}, inputErr("kind ecr: token expiry %s is more than %v away; ECR tokens last 12 hours", exp.UTC().Format(time.RFC3339), maxPastedTokenLife)
		}
		p.Secret = Secret{Password: tok, ExpiresAt: exp.UTC().Truncate(time.Second)}
		return p, nil
	}
	if strings.IndexFunc(in.Password, unicode.IsSpace) >= 0 || len(in.Password) > 256 {
		return Prepared{}, inputErr("kind ecr: the secret access key contains white space or is longer than 256 bytes")
	}
	p.Secret = Secret{AWS: &AWSKeys{AccessKeyID: in.AWSAccessKeyID, SecretAccessKey: in.Password,
		RoleARN: in.AWSRoleARN, ExternalID: in.AWSExternalID, Region: in.AWSRegion}}
	return p, nil
}

// parseECRToken accepts the password of `aws ecr get-login-password` or
// the authorizationToken of GetAuthorizationToken (base64 of
// "AWS:<password>"), and reads the expiry the password carries, if any.
func parseECRToken(s string) (string, time.Time) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		if pw, ok := strings.CutPrefix(string(b), ecrUser+":"); ok {
			s = pw
		}
	}
	var exp time.Time
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		var payload struct {
			Expiration json.Number `json:"expiration"`
		}
		if json.Unmarshal(b, &payload) == nil && payload.Expiration != "" {
			if f, err := strconv.ParseFloat(string(payload.Expiration), 64); err == nil && f > 0 {
				exp = time.Unix(int64(f), 0)
			}
		}
	}
	return s, exp
}

// prepareACR builds an acr secret; CheckParams has checked the parameters.
func prepareACR(in Input) (Prepared, error) {
	if in.AzureTenantID == "" && in.AzureClientID == "" {
		return Prepared{Kind: KindACR, Username: in.Username, Secret: Secret{Password: in.Password}}, nil
	}
	return Prepared{Kind: KindACR, Username: strings.ToLower(in.AzureClientID), Secret: Secret{Azure: &AzureSP{
		TenantID: in.AzureTenantID, ClientID: strings.ToLower(in.AzureClientID), ClientSecret: in.Password}}}, nil
}

func prepareGCP(in Input) (Prepared, error) {
	user := in.Username
	if user == "" {
		user = gcpJSONKey
	}
	switch user {
	case gcpJSONKey:
		if err := CheckServiceAccountJSON([]byte(in.Password)); err != nil {
			return Prepared{}, err
		}
	case gcpJSONKeyBase64:
		b, err := decodeBase64(in.Password)
		if err != nil {
			return Prepared{}, inputErr("kind gcp: username _json_key_base64: the password is not base64")
		}
		if err := CheckServiceAccountJSON(b); err != nil {
			return Prepared{}, err
		}
	case gcpOAuthToken:
		if strings.IndexFunc(in.Password, unicode.IsSpace) >= 0 {
			return Prepared{}, inputErr("kind gcp: the access token contains white space")
		}
	default:
		return Prepared{}, inputErr("kind gcp: username %q: want one of %v", clip(user), GCPUsernames)
	}
	return Prepared{Kind: KindGCP, Username: user, Secret: Secret{Password: in.Password}}, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// clip bounds a non-secret value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Validate checks a credential's kind, username and secret together, as
// they are stored. (Prepare checks operator input; Validate what is sealed.)
func Validate(kind, username string, s Secret) error {
	if !slices.Contains(Kinds, kind) {
		return fmt.Errorf("kind %q: want one of %v", kind, Kinds)
	}
	switch {
	case kind == KindECR && s.AWS != nil:
		if s.AWS.AccessKeyID == "" || s.AWS.SecretAccessKey == "" {
			return fmt.Errorf("kind ecr: access key id and secret access key are required")
		}
		return nil
	case kind == KindACR && s.Azure != nil:
		if s.Azure.TenantID == "" || s.Azure.ClientID == "" || s.Azure.ClientSecret == "" {
			return fmt.Errorf("kind acr: tenant id, client id and client secret are required")
		}
		return nil
	}
	if (kind == KindBasic || kind == KindACR) && username == "" {
		return fmt.Errorf("kind %s needs a username", kind)
	}
	if s.Password == "" {
		return fmt.Errorf("empty password")
	}
	if len(s.Password) > MaxSecretLen {
		return fmt.Errorf("password longer than %d bytes", MaxSecretLen)
	}
	return nil
}

// Info is what may be shown about a credential's secret: how it
// authenticates and when it expires. It never holds secret material.
type Info struct {
	Auth      string
	ExpiresAt time.Time // zero when the hub renews it or it does not expire
	Warnings  []string
}

// NeedsSecretToDescribe reports whether Describe reads the secret for
// this kind (list views open secrets only then).
func NeedsSecretToDescribe(kind string) bool { return kind == KindECR || kind == KindACR }

// Describe reports how c authenticates. s may be the zero Secret for
// kinds where NeedsSecretToDescribe is false.
func Describe(c store.Credential, s Secret, now time.Time) Info {
	switch c.Kind {
	case KindToken:
		return Info{Auth: AuthToken}
	case KindECR:
		if s.AWS != nil {
			if s.AWS.RoleARN != "" {
				return Info{Auth: AuthAWSAssumeRole}
			}
			return Info{Auth: AuthAWSKeys}
		}
		info := Info{Auth: AuthECRToken, ExpiresAt: s.ExpiresAt}
		switch left := s.ExpiresAt.Sub(now); {
		case s.ExpiresAt.IsZero():
		case left <= 0:
			info.Warnings = append(info.Warnings, fmt.Sprintf("the pasted ECR token expired at %s: pulls fail until it is replaced; store AWS access keys to let the hub renew tokens itself",
				s.ExpiresAt.UTC().Format(time.RFC3339)))
		default:
			info.Warnings = append(info.Warnings, fmt.Sprintf("the pasted ECR token expires at %s (in %s) and the hub cannot renew it; store AWS access keys to let the hub renew tokens itself",
				s.ExpiresAt.UTC().Format(time.RFC3339), left.Round(time.Minute)))
		}
		return info
	case KindACR:
		if s.Azure != nil {
			return Info{Auth: AuthServicePrinc}
		}
		return Info{Auth: AuthPassword}
	case KindGCP:
		switch c.Username {
		case gcpJSONKeyBase64:
			return Info{Auth: AuthJSONKeyBase64}
		case gcpOAuthToken:
			return Info{Auth: AuthOAuthToken, Warnings: []string{"OAuth2 access tokens expire after about an hour and the hub cannot renew them; store a service-account key (username _json_key) instead"}}
		}
		return Info{Auth: AuthJSONKey}
	}
	return Info{Auth: AuthPassword}
}
