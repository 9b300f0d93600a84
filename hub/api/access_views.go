package api

import (
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// The JSON types of per-workspace access: principals, sessions, API
// tokens, members and the activity log. The CLI and the console use them.

// Principal kinds.
const (
	PrincipalAdmin = "admin"
	PrincipalUser  = "user"
)

// PrincipalView is who a request is signed in as.
type PrincipalView struct {
	Kind       string          `json:"kind"` // "admin" or "user"
	Name       string          `json:"name"`
	Workspaces []WorkspaceRole `json:"workspaces"`
	// TokenID is the API token the request authenticated with (users).
	TokenID string `json:"token_id,omitempty"`
}

// WorkspaceRole is a principal's role in one workspace.
type WorkspaceRole struct {
	Workspace string `json:"workspace"`
	Role      string `json:"role"`
}

// CreateSessionRequest is the body of POST /api/v1/session.
type CreateSessionRequest struct {
	Token Password `json:"token"`
}

// SessionView is the body of POST and GET /api/v1/session.
type SessionView struct {
	Principal PrincipalView `json:"principal"`
	// CSRFToken must be sent as X-CSRF-Token with every state-changing
	// request authenticated by the session cookie.
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateAPITokenRequest is the body of POST /api/v1/tokens.
type CreateAPITokenRequest struct {
	// User the token is for: empty for the caller itself; another user
	// only for the hub admin (a user's first token).
	User        string `json:"user,omitempty"`
	Description string `json:"description,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty: DefaultAPITokenTTL;
	// "0": never expires.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// APIToken is an API token's metadata.
type APIToken struct {
	ID          string     `json:"id"`
	User        string     `json:"user"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	// State is "active", "expired" or "revoked".
	State string `json:"state"`
}

// NewAPIToken is the answer to POST /api/v1/tokens: the token is shown
// this once and never again.
type NewAPIToken struct {
	APIToken
	Token string `json:"token"`
}

// APITokenList is the body of GET /api/v1/tokens.
type APITokenList struct {
	Tokens []APIToken `json:"tokens"`
}

// Member is a workspace member.
type Member struct {
	User      string    `json:"user"`
	Workspace string    `json:"workspace"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MemberList is the body of GET .../members.
type MemberList struct {
	Members []Member `json:"members"`
}

// AddMemberRequest is the body of POST .../members.
type AddMemberRequest struct {
	User string `json:"user"`
	Role string `json:"role"`
}

// UpdateMemberRequest is the body of PATCH .../members/{user}.
type UpdateMemberRequest struct {
	Role string `json:"role"`
}

// Activity is one operator action.
type Activity struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	PrincipalKind string    `json:"principal_kind"`
	Principal     string    `json:"principal"`
	TokenID       string    `json:"token_id,omitempty"`
	Action        string    `json:"action"`
	TargetKind    string    `json:"target_kind"`
	Target        string    `json:"target,omitempty"`
	Workspace     string    `json:"workspace,omitempty"`
	RemoteAddr    string    `json:"remote_addr"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	Status        int       `json:"status"`
	Result        string    `json:"result"` // "ok", "refused" or "failed"
}

// ActivityList is the body of the activity routes.
type ActivityList struct {
	Activity []Activity `json:"activity"`
}

func apiTokenView(t store.APIToken, now time.Time) APIToken {
	v := APIToken{ID: t.ID, User: t.User, Description: t.Description, CreatedAt: t.CreatedAt, State: "active",
		ExpiresAt: optTime(t.ExpiresAt), LastUsedAt: optTime(t.LastUsedAt), RevokedAt: optTime(t.RevokedAt)}
	switch {
	case !t.RevokedAt.IsZero():
		v.State = "revoked"
	case !t.Usable(now):
		v.State = "expired"
	}
	return v
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func memberView(m store.Membership) Member {
	return Member{User: m.User, Workspace: m.Workspace, Role: string(m.Role), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func activityView(a store.Activity) Activity {
	return Activity{ID: a.ID, Time: a.Time, PrincipalKind: a.PrincipalKind, Principal: a.Principal, TokenID: a.TokenID,
		Action: a.Action, TargetKind: a.TargetKind, Target: a.Target, Workspace: a.Workspace, RemoteAddr: a.RemoteAddr,
		Method: a.Method, Path: a.Path, Status: a.Status, Result: a.Result}
}
