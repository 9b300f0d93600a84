package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pullgate/pullgate/hub/api"
)

// Per-workspace access: API tokens, members, who am I, activity.

// Whoami returns who the client's token signs in as.
func (c *Client) Whoami(ctx context.Context) (api.PrincipalView, error) {
	var out api.PrincipalView
	if err := c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, &out); err != nil {
		return out, fmt.Errorf("whoami: %w", err)
	}
	return out, nil
}

// CreateAPIToken creates an API token (for req.User: the admin only).
func (c *Client) CreateAPIToken(ctx context.Context, req api.CreateAPITokenRequest) (api.NewAPIToken, error) {
	var out api.NewAPIToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out); err != nil {
		if req.User != "" {
			return out, fmt.Errorf("create API token for user %q: %w", req.User, err)
		}
		return out, fmt.Errorf("create API token: %w", err)
	}
	return out, nil
}

// ListAPITokens lists the caller's tokens (the admin: every user's, or
// user's).
func (c *Client) ListAPITokens(ctx context.Context, user string) ([]api.APIToken, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var out api.APITokenList
	if err := c.do(ctx, http.MethodGet, "/api/v1/tokens", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out.Tokens, nil
}

// RevokeAPIToken revokes an API token by id.
func (c *Client) RevokeAPIToken(ctx context.Context, id string) (api.APIToken, error) {
	var out api.APIToken
	if err := c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+esc(id), nil, nil, &out); err != nil {
		return out, fmt.Errorf("revoke API token %q: %w", id, err)
	}
	return out, nil
}

// DeleteUser deletes a user with its memberships, tokens and sessions
// (the admin).
func (c *Client) DeleteUser(ctx context.Context, user string) error {
	if err := c.do(ctx, http.MethodDelete, "/api/v1/users/"+esc(user), nil, nil, nil); err != nil {
		return fmt.Errorf("delete user %q: %w", user, err)
	}
	return nil
}

func memberPath(ws, user string) string { return wsPath(ws) + "/members/" + esc(user) }

// AddMember adds user to ws with role.
func (c *Client) AddMember(ctx context.Context, ws, user, role string) (api.Member, error) {
	var out api.Member
	if err := c.do(ctx, http.MethodPost, wsPath(ws)+"/members", nil, api.AddMemberRequest{User: user, Role: role}, &out); err != nil {
		return out, fmt.Errorf("add member %q to workspace %q: %w", user, ws, err)
	}
	return out, nil
}

// ListMembers lists a workspace's members.
func (c *Client) ListMembers(ctx context.Context, ws string) ([]api.Member, error) {
	var out api.MemberList
	if err := c.do(ctx, http.MethodGet, wsPath(ws)+"/members", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list members of workspace %q: %w", ws, err)
	}
	return out.Members, nil
}

// UpdateMember changes a member's role.
func (c *Client) UpdateMember(ctx context.Context, ws, user, role string) (api.Member, error) {
	var out api.Member
	if err := c.do(ctx, http.MethodPatch, memberPath(ws, user), nil, api.UpdateMemberRequest{Role: role}, &out); err != nil {
		return out, fmt.Errorf("update member %q of workspace %q: %w", user, ws, err)
	}
	return out, nil
}

// RemoveMember removes a member from a workspace.
func (c *Client) RemoveMember(ctx context.Context, ws, user string) error {
	if err := c.do(ctx, http.MethodDelete, memberPath(ws, user), nil, nil, nil); err != nil {
		return fmt.Errorf("remove member %q from workspace %q: %w", user, ws, err)
	}
	return nil
}

// ActivityQuery selects activity rows; zero fields do not filter.
type ActivityQuery struct {
	Workspace string
	Since     string
	After     int64
	Limit     int
}

// Activity reads the operator activity of a workspace (owners and the
// admin) or, with Workspace empty, of the whole hub (the admin).
func (c *Client) Activity(ctx context.Context, q ActivityQuery) ([]api.Activity, error) {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/v1/activity"
	if q.Workspace != "" {
		path = wsPath(q.Workspace) + "/activity"
	}
	var out api.ActivityList
	if err := c.do(ctx, http.MethodGet, path, v, nil, &out); err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	return out.Activity, nil
}
