package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Tenant self-service: an Akash account owner proves control of the
// account's key by signing a challenge the way Cosmos wallets sign
// arbitrary data (ADR-036), and gets an API token for the one workspace
// the account owns on this hub, created on the first login. No operator
// is involved, so the routes are public and rate-limited, and off unless
// the hub runs with --akash-tenants.
//
// The challenge text names this hub's public URL, so a signature made for
// another hub (or any other purpose) is no login here; it is stored and
// deleted by the first login attempt that names it, right or wrong, so a
// signature cannot be replayed; the bytes checked are rebuilt from the
// stored address and text, never taken from the client.

// TenantStore is what tenant self-service keeps.
type TenantStore interface {
	CreateAkashChallenge(ctx context.Context, c store.AkashChallenge, perAddress, total int) (store.AkashChallenge, error)
	ConsumeAkashChallenge(ctx context.Context, id string) (store.AkashChallenge, error)
	LoginAkashAccount(ctx context.Context, address, workspace string, t store.APIToken, hash []byte) (store.AkashLogin, error)
}

// Tenant login bounds.
const (
	// ChallengeTTL is how long a challenge can be signed and used.
	ChallengeTTL = 5 * time.Minute
	// TenantTokenTTL is the lifetime of the API token a login mints.
	TenantTokenTTL = 30 * 24 * time.Hour
	// Live challenges kept per address (older ones are dropped) and in
	// all (beyond that, challenge requests get 429).
	maxChallengesPerAddress = 5
	maxChallenges           = 10000
	// maxTenantBody bounds a tenant request: an address, or an id, a key,
	// a signature and a workspace name.
	maxTenantBody = 4 << 10
	// tenantTokenDescription marks the API tokens logins mint.
	tenantTokenDescription = "akash login"
)

// tenantOff is what every tenant route answers without --akash-tenants.
var tenantOff = errorf(http.StatusNotFound, "tenant self-service is off on this hub (the hub runs without --akash-tenants)")

// tenantGate checks that tenant self-service is on and the client within
// its rate limits, and bounds the request body.
func (s *server) tenantGate(w http.ResponseWriter, r *http.Request) error {
	if !s.d.AkashTenants {
		return tenantOff
	}
	if s.d.PublicURL == "" {
		// Without it the challenge could not name the hub (the command
		// refuses this combination; a library user may not).
		return errorf(http.StatusServiceUnavailable, "tenant self-service needs the hub's public URL (--public-url)")
	}
	if err := s.tenantLimit.allow(remoteAddr(r), s.now()); err != nil {
		w.Header().Set("Retry-After", "5")
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTenantBody)
	return nil
}

// challengeMessage is the text a tenant signs.
func challengeMessage(publicURL, address, nonce string, expires time.Time) string {
	return fmt.Sprintf("pullgate login\nhub: %s\naddress: %s\nnonce: %s\nexpires: %s",
		publicURL, address, nonce, expires.UTC().Format(time.RFC3339))
}

// createTenantChallenge answers POST /api/v1/tenant/challenge.
func (s *server) createTenantChallenge(w http.ResponseWriter, r *http.Request) error {
	if err := s.tenantGate(w, r); err != nil {
		return err
	}
	var req TenantChallengeRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := akash.ValidateAddress(req.Address); err != nil {
		return badRequest("%v", err)
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // never fails (crypto/rand)
	expires := s.now().Add(ChallengeTTL).Truncate(time.Second)
	c := store.AkashChallenge{
		Address:   req.Address,
		Message:   challengeMessage(s.d.PublicURL, req.Address, base64.RawURLEncoding.EncodeToString(nonce[:]), expires),
		ExpiresAt: expires,
	}
	c, err := s.d.Store.CreateAkashChallenge(r.Context(), c, maxChallengesPerAddress, maxChallenges)
	if errors.Is(err, store.ErrTooManyChallenges) {
		w.Header().Set("Retry-After", "60")
		return tooManyRequests(err.Error())
	}
	if err != nil {
		return err
	}
	setTarget(r, "akash_account", c.Address)
	writeJSON(w, http.StatusCreated, TenantChallenge{
		ID: c.ID, Address: c.Address, Message: c.Message,
		SignDoc: string(akash.SignBytes(c.Address, []byte(c.Message))), ExpiresAt: c.ExpiresAt.UTC(),
	})
	return nil
}

// loginTenant answers POST /api/v1/tenant/login.
func (s *server) loginTenant(w http.ResponseWriter, r *http.Request) error {
	if err := s.tenantGate(w, r); err != nil {
		return err
	}
	var req TenantLoginRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Challenge == "" || len(req.Challenge) > 128 {
		return badRequest("challenge: want the id of a challenge (POST /api/v1/tenant/challenge)")
	}
	// First, whatever the rest of the request holds: the challenge is
	// used up by this attempt.
	c, err := s.d.Store.ConsumeAkashChallenge(r.Context(), req.Challenge)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusUnauthorized, "unauthorized: unknown challenge, or already used (each challenge allows one login attempt): ask for a new one")
	}
	if err != nil {
		return err
	}
	setTarget(r, "akash_account", c.Address)
	if !s.now().Before(c.ExpiresAt) {
		return errorf(http.StatusUnauthorized, "unauthorized: the challenge expired at %s: ask for a new one", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	pub, err := req.PubKey.bytes()
	if err != nil {
		return errorf(http.StatusUnauthorized, "unauthorized: pub_key: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(req.Signature)
	if err != nil {
		return errorf(http.StatusUnauthorized, "unauthorized: signature: want the base64 of a 64-byte secp256k1 signature")
	}
	if err := akash.VerifyADR036(c.Address, []byte(c.Message), pub, sig); err != nil {
		return errorf(http.StatusUnauthorized, "unauthorized: %v", err)
	}
	if req.Workspace != "" && !store.ValidName(req.Workspace) {
		return badRequest("workspace name %q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", req.Workspace)
	}
	if err := s.makeRoomForLoginToken(r.Context(), c.Address); err != nil {
		return err
	}
	secret := newSecret(APITokenPrefix)
	t := store.APIToken{Description: tenantTokenDescription, ExpiresAt: s.now().Add(TenantTokenTTL)}
	l, err := s.d.Store.LoginAkashAccount(r.Context(), c.Address, req.Workspace, t, hashSecret(secret))
	if err != nil {
		return err
	}
	// The login is the tenant's own action: its activity row names the
	// user it signed in as, in its workspace.
	setPrincipal(r, &Principal{Kind: PrincipalUser, Name: l.Token.User, UserID: l.Token.UserID, TokenID: l.Token.ID})
	if ri := infoFrom(r.Context()); ri != nil {
		ri.workspace, ri.workspaceID = l.Account.Workspace, l.Account.WorkspaceID
	}
	writeJSON(w, http.StatusOK, TenantLogin{
		Token: secret, TokenID: l.Token.ID, ExpiresAt: l.Token.ExpiresAt.UTC(),
		User: l.Token.User, Workspace: l.Account.Workspace, Created: l.Created,
	})
	return nil
}

// makeRoomForLoginToken keeps a tenant who logs in often within
// MaxActiveAPITokens: at the limit, the oldest token an earlier login
// minted is revoked. Tokens the tenant made itself are never touched.
func (s *server) makeRoomForLoginToken(ctx context.Context, address string) error {
	u, err := s.d.Store.GetUser(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ts, err := s.d.Store.ListAPITokens(ctx, u.ID)
	if err != nil {
		return err
	}
	now := s.now()
	var usable []store.APIToken
	for _, t := range ts {
		if t.Usable(now) {
			usable = append(usable, t)
		}
	}
	if len(usable) < MaxActiveAPITokens {
		return nil
	}
	// Newest first: the last login token is the oldest.
	for i := len(usable) - 1; i >= 0; i-- {
		if usable[i].Description == tenantTokenDescription {
			_, err := s.d.Store.RevokeAPIToken(ctx, usable[i].ID, u.ID)
			return err
		}
	}
	return errorf(http.StatusConflict, "user %q has %d active API tokens, the most allowed: revoke unused ones first (token list, token revoke)", address, len(usable))
}

// TenantChallengeRequest is the body of POST /api/v1/tenant/challenge.
type TenantChallengeRequest struct {
	Address string `json:"address"`
}

// TenantChallenge is the answer of POST /api/v1/tenant/challenge.
type TenantChallenge struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Message is the text to sign (Keplr: signArbitrary(chainId,
	// address, message)).
	Message string `json:"message"`
	// SignDoc is the exact ADR-036 document the wallet signs, for
	// clients that sign bytes themselves.
	SignDoc   string    `json:"sign_doc"`
	ExpiresAt time.Time `json:"expires_at"`
}

// TenantLoginRequest is the body of POST /api/v1/tenant/login.
type TenantLoginRequest struct {
	Challenge string       `json:"challenge"`
	PubKey    TenantPubKey `json:"pub_key"`
	Signature string       `json:"signature"`
	// Workspace names the workspace a first login creates (default
	// akash-<first 10 characters of the address after "akash1">).
	Workspace string `json:"workspace,omitempty"`
}

// TenantPubKey is the signer's compressed secp256k1 public key, in
// base64: a plain string, or Keplr's
// {"type":"tendermint/PubKeySecp256k1","value":"..."}.
type TenantPubKey struct {
	Type  string
	Value string
}

// UnmarshalJSON accepts both shapes.
func (k *TenantPubKey) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		k.Type = ""
		return json.Unmarshal(b, &k.Value)
	}
	var obj struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return errors.New(`pub_key: want a base64 string or {"type":"tendermint/PubKeySecp256k1","value":"<base64>"}`)
	}
	k.Type, k.Value = obj.Type, obj.Value
	return nil
}

// MarshalJSON writes the form it was read in.
func (k TenantPubKey) MarshalJSON() ([]byte, error) {
	if k.Type == "" {
		return json.Marshal(k.Value)
	}
	return json.Marshal(struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}{k.Type, k.Value})
}

func (k TenantPubKey) bytes() ([]byte, error) {
	if k.Type != "" && k.Type != "tendermint/PubKeySecp256k1" {
		return nil, fmt.Errorf("type %q: want tendermint/PubKeySecp256k1", k.Type)
	}
	b, err := base64.StdEncoding.DecodeString(k.Value)
	if err != nil {
		return nil, errors.New("want the base64 of a 33-byte compressed secp256k1 key")
	}
	return b, nil
}

// TenantLogin is the answer of POST /api/v1/tenant/login. Token is shown
// once.
type TenantLogin struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
	User      string    `json:"user"`
	Workspace string    `json:"workspace"`
	// Created: this login created the workspace.
	Created bool `json:"created"`
}
