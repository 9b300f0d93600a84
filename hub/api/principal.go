package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// APITokenPrefix starts every user API token, so that secret scanners and
// the CLI tell it from the admin token ("pga_") and install tokens (JWTs).
const APITokenPrefix = "pgu_"

// DefaultAPITokenTTL is an API token's lifetime when its creator names
// none.
const DefaultAPITokenTTL = 90 * 24 * time.Hour

// Principal is who a request acts as: the hub admin or a user, with the
// user's workspace roles as they were when the request came in.
type Principal struct {
	Kind    string // PrincipalAdmin or PrincipalUser
	Name    string // "admin" or the user name
	UserID  string
	TokenID string // the user's API token
	// Memberships are the user's workspaces and roles.
	Memberships []store.Membership
	// session is set when the request was authenticated by the console
	// session cookie; csrf is what its X-CSRF-Token must be.
	session *store.Session
	csrf    string
	// tokenExpires is when the user's API token (the one the request or
	// its session was made with) expires; zero: never. Tokens it creates
	// expire no later (createAPIToken).
	tokenExpires time.Time
	// saToken is the service-account token a would-be Akash controller
	// presented (controller routes only), verified by checkAkashController
	// against the route's cluster; never logged or stored.
	saToken string
}

// IsAdmin reports whether p is the hub admin.
func (p *Principal) IsAdmin() bool { return p != nil && p.Kind == PrincipalAdmin }

// Role is p's role in the named workspace: owner for the admin, "" for a
// workspace p is no member of.
func (p *Principal) Role(workspace string) store.Role {
	if p.IsAdmin() {
		return store.RoleOwner
	}
	m, _ := p.membership(workspace)
	return m.Role
}

// membership is p's membership of the named workspace.
func (p *Principal) membership(workspace string) (store.Membership, bool) {
	for _, m := range p.Memberships {
		if m.Workspace == workspace {
			return m, true
		}
	}
	return store.Membership{}, false
}

// RoleByID is Role by workspace id.
func (p *Principal) RoleByID(workspaceID string) store.Role {
	if p.IsAdmin() {
		return store.RoleOwner
	}
	m, _ := p.membershipByID(workspaceID)
	return m.Role
}

// membershipByID is p's membership of the workspace with that id.
func (p *Principal) membershipByID(workspaceID string) (store.Membership, bool) {
	for _, m := range p.Memberships {
		if m.WorkspaceID == workspaceID {
			return m, true
		}
	}
	return store.Membership{}, false
}

// WorkspaceNames lists the workspaces p is a member of.
func (p *Principal) WorkspaceNames() []string {
	out := make([]string, 0, len(p.Memberships))
	for _, m := range p.Memberships {
		out = append(out, m.Workspace)
	}
	return out
}

func (p *Principal) view() PrincipalView {
	v := PrincipalView{Kind: p.Kind, Name: p.Name, Workspaces: []WorkspaceRole{}, TokenID: p.TokenID}
	for _, m := range p.Memberships {
		v.Workspaces = append(v.Workspaces, WorkspaceRole{Workspace: m.Workspace, Role: string(m.Role)})
	}
	return v
}

// principalFrom returns the request's principal; nil on public routes
// before they sign in.
func principalFrom(ctx context.Context) *Principal {
	if ri := infoFrom(ctx); ri != nil {
		return ri.principal
	}
	return nil
}

// errUnauthenticated is any failure to authenticate. The client learns no
// more than that (not whether a token exists, expired or was revoked).
var errUnauthenticated = errors.New("unauthenticated")

// CredentialResolver turns a presented secret into a principal. The admin
// token and users' API tokens are resolved by the hub itself
// (tokenResolver); a later OIDC login would resolve an ID token to a user
// the same way and open a session for it with the same session code.
type CredentialResolver interface {
	Resolve(ctx context.Context, credential string) (*Principal, error)
}

// tokenResolver resolves the admin token and users' API tokens.
type tokenResolver struct {
	store    AccessStore
	adminSum [sha256.Size]byte
	hasAdmin bool
	now      func() time.Time
}

// Resolve returns the principal for tok or errUnauthenticated.
func (t *tokenResolver) Resolve(ctx context.Context, tok string) (*Principal, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, errUnauthenticated
	}
	// Hash first so that the comparison takes the same time whatever the
	// lengths.
	sum := sha256.Sum256([]byte(tok))
	if t.hasAdmin && subtle.ConstantTimeCompare(sum[:], t.adminSum[:]) == 1 {
		return &Principal{Kind: PrincipalAdmin, Name: "admin"}, nil
	}
	if !strings.HasPrefix(tok, APITokenPrefix) {
		return nil, errUnauthenticated
	}
	// The lookup is by the token's SHA-256, an indexed equality: no
	// timing difference tells a near-miss from a miss.
	at, err := t.store.APITokenByHash(ctx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	return t.userPrincipal(ctx, at)
}

// userPrincipal is the principal of a user's token, if the token is still
// usable.
func (t *tokenResolver) userPrincipal(ctx context.Context, at store.APIToken) (*Principal, error) {
	now := t.now()
	if !at.Usable(now) {
		return nil, errUnauthenticated
	}
	ms, err := t.store.MembershipsOf(ctx, at.UserID)
	if err != nil {
		return nil, err
	}
	// Last use has minute resolution (the store writes only when the
	// recorded use is older): skip the UPDATE on most requests.
	if now.Sub(at.LastUsedAt) >= time.Minute {
		if err := t.store.TouchAPIToken(ctx, at.ID, now); err != nil {
			return nil, err
		}
	}
	return &Principal{Kind: PrincipalUser, Name: at.User, UserID: at.UserID, TokenID: at.ID, Memberships: ms, tokenExpires: at.ExpiresAt}, nil
}

// newSecret returns prefix followed by 256 random bits, base64url.
func newSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// authenticate finds the request's principal: a bearer token when the
// request has an Authorization header, else the session cookie.
func (s *server) authenticate(r *http.Request) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, errUnauthenticated
		}
		return s.tokens.Resolve(r.Context(), tok)
	}
	if value, ok := s.sessionCookie(r); ok {
		return s.sessionPrincipal(r.Context(), value)
	}
	return nil, errUnauthenticated
}

// unauthorized answers 401 with how to authenticate.
func unauthorized(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="pullgate-hub"`)
	writeJSON(w, http.StatusUnauthorized, Error{Error: fmt.Sprintf("unauthorized: %s", why)})
}

const unauthorizedHelp = "send the admin token or an API token as Authorization: Bearer <token>, or sign in to the console"
