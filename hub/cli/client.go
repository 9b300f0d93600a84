package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/upstream"
)

// maxResponseBytes bounds what the client reads from the hub.
const maxResponseBytes = 64 << 20

// Client is a typed client of the hub's REST API (package api). Every error
// names the operation, the HTTP status and the API's own message:
//
//	create workspace "x": 409 Conflict: workspace "x" already exists
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// APIError is an error answer of the hub.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// NewClient returns a client for the hub at baseURL ("http://127.0.0.1:5080")
// that authenticates with the admin token. hc may be nil.
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := parseHubURL(baseURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, token: token, hc: hc}, nil
}

func parseHubURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub URL %q: want http(s)://host[:port][/path]", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// do sends a request to path (under the base URL) and decodes the JSON
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path += path
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if c.token != "" { // none on the public routes (tenant login)
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error repeats method and URL; keep the cause, add the hub.
			return fmt.Errorf("hub %s: %w", c.base.Redacted(), ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("hub %s: read response: %w", c.base.Redacted(), err)
	}
	if resp.StatusCode >= 300 {
		var e api.Error
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
		}
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = "(no message)"
		}
		return &APIError{StatusCode: resp.StatusCode, Message: msg}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("hub %s: decode response: %w", c.base.Redacted(), err)
		}
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

func wsPath(ws string) string { return "/api/v1/workspaces/" + esc(ws) }

func regPath(ws, name string) string { return wsPath(ws) + "/registries/" + esc(name) }

func instPath(ws, name string) string { return wsPath(ws) + "/installs/" + esc(name) }

// ---------------------------------------------------------------------------
// Workspaces

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, name string) (api.Workspace, error) {
	var out api.Workspace
	err := c.do(ctx, http.MethodPost, "/api/v1/workspaces", nil, api.CreateWorkspaceRequest{Name: name}, &out)
	if err != nil {
		return out, fmt.Errorf("create workspace %q: %w", name, err)
	}
	return out, nil
}

// ListWorkspaces lists all workspaces.
func (c *Client) ListWorkspaces(ctx context.Context) ([]api.Workspace, error) {
	var out api.WorkspaceList
	if err := c.do(ctx, http.MethodGet, "/api/v1/workspaces", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return out.Workspaces, nil
}

// DeleteWorkspace deletes a workspace with everything it owns. Without
// force the hub refuses while the workspace has installs or clusters.
func (c *Client) DeleteWorkspace(ctx context.Context, name string, force bool) (api.DeleteWorkspaceResult, error) {
	var out api.DeleteWorkspaceResult
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	if err := c.do(ctx, http.MethodDelete, wsPath(name), q, nil, &out); err != nil {
		return out, fmt.Errorf("delete workspace %q: %w", name, err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Registries

// AddRegistry adds a registry credential to a workspace.
func (c *Client) AddRegistry(ctx context.Context, ws string, req api.CreateRegistryRequest) (api.Registry, error) {
	var out api.Registry
	if err := c.do(ctx, http.MethodPost, wsPath(ws)+"/registries", nil, req, &out); err != nil {
		return out, fmt.Errorf("add registry %q to workspace %q: %w", req.Name, ws, err)
	}
	return out, nil
}

// ListRegistries lists a workspace's registry credentials (metadata only).
func (c *Client) ListRegistries(ctx context.Context, ws string) ([]api.Registry, error) {
	var out api.RegistryList
	if err := c.do(ctx, http.MethodGet, wsPath(ws)+"/registries", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list registries of workspace %q: %w", ws, err)
	}
	return out.Registries, nil
}

// GetRegistry returns a registry credential's metadata.
func (c *Client) GetRegistry(ctx context.Context, ws, name string) (api.Registry, error) {
	var out api.Registry
	if err := c.do(ctx, http.MethodGet, regPath(ws, name), nil, nil, &out); err != nil {
		return out, fmt.Errorf("get registry %q of workspace %q: %w", name, ws, err)
	}
	return out, nil
}

// UpdateRegistry changes a registry credential.
func (c *Client) UpdateRegistry(ctx context.Context, ws, name string, req api.UpdateRegistryRequest) (api.Registry, error) {
	var out api.Registry
	if err := c.do(ctx, http.MethodPatch, regPath(ws, name), nil, req, &out); err != nil {
		return out, fmt.Errorf("update registry %q of workspace %q: %w", name, ws, err)
	}
	return out, nil
}

// SetRegistryEnabled enables or disables a registry credential.
func (c *Client) SetRegistryEnabled(ctx context.Context, ws, name string, enabled bool) (api.Registry, error) {
	verb := map[bool]string{true: "enable", false: "disable"}[enabled]
	var out api.Registry
	if err := c.do(ctx, http.MethodPost, regPath(ws, name)+"/"+verb, nil, nil, &out); err != nil {
		return out, fmt.Errorf("%s registry %q of workspace %q: %w", verb, name, ws, err)
	}
	return out, nil
}

// DeleteRegistry deletes a registry credential.
func (c *Client) DeleteRegistry(ctx context.Context, ws, name string) error {
	if err := c.do(ctx, http.MethodDelete, regPath(ws, name), nil, nil, nil); err != nil {
		return fmt.Errorf("delete registry %q of workspace %q: %w", name, ws, err)
	}
	return nil
}

// TestRegistry runs a handshake with the credential's upstream; repo may be
// empty.
func (c *Client) TestRegistry(ctx context.Context, ws, name, repo string) (upstream.CheckResult, error) {
	var out upstream.CheckResult
	if err := c.do(ctx, http.MethodPost, regPath(ws, name)+"/test", nil, api.TestRegistryRequest{Repository: repo}, &out); err != nil {
		return out, fmt.Errorf("test registry %q of workspace %q: %w", name, ws, err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Installs

// CreateInstall creates an install.
func (c *Client) CreateInstall(ctx context.Context, ws string, req api.CreateInstallRequest) (api.Install, error) {
	var out api.Install
	if err := c.do(ctx, http.MethodPost, wsPath(ws)+"/installs", nil, req, &out); err != nil {
		return out, fmt.Errorf("create install %q in workspace %q: %w", req.Name, ws, err)
	}
	return out, nil
}

// ListInstalls lists a workspace's installs.
func (c *Client) ListInstalls(ctx context.Context, ws string) ([]api.Install, error) {
	var out api.InstallList
	if err := c.do(ctx, http.MethodGet, wsPath(ws)+"/installs", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list installs of workspace %q: %w", ws, err)
	}
	return out.Installs, nil
}

// GetInstall returns an install.
func (c *Client) GetInstall(ctx context.Context, ws, name string) (api.Install, error) {
	var out api.Install
	if err := c.do(ctx, http.MethodGet, instPath(ws, name), nil, nil, &out); err != nil {
		return out, fmt.Errorf("get install %q of workspace %q: %w", name, ws, err)
	}
	return out, nil
}

// UpdateInstall changes an install's allow-list and/or binding.
func (c *Client) UpdateInstall(ctx context.Context, ws, name string, req api.UpdateInstallRequest) (api.Install, error) {
	var out api.Install
	if err := c.do(ctx, http.MethodPatch, instPath(ws, name), nil, req, &out); err != nil {
		return out, fmt.Errorf("update install %q of workspace %q: %w", name, ws, err)
	}
	return out, nil
}

// SetInstallEnabled enables or disables an install.
func (c *Client) SetInstallEnabled(ctx context.Context, ws, name string, enabled bool) (api.Install, error) {
	verb := map[bool]string{true: "enable", false: "disable"}[enabled]
	var out api.Install
	if err := c.do(ctx, http.MethodPost, instPath(ws, name)+"/"+verb, nil, nil, &out); err != nil {
		return out, fmt.Errorf("%s install %q of workspace %q: %w", verb, name, ws, err)
	}
	return out, nil
}

// DeleteInstall deletes an install.
func (c *Client) DeleteInstall(ctx context.Context, ws, name string) error {
	if err := c.do(ctx, http.MethodDelete, instPath(ws, name), nil, nil, nil); err != nil {
		return fmt.Errorf("delete install %q of workspace %q: %w", name, ws, err)
	}
	return nil
}

// MintToken mints an install token; ttl 0 means the hub's default.
func (c *Client) MintToken(ctx context.Context, ws, install string, ttl time.Duration) (api.Token, error) {
	req := api.MintTokenRequest{}
	if ttl != 0 {
		req.TTL = ttl.String()
	}
	var out api.Token
	if err := c.do(ctx, http.MethodPost, instPath(ws, install)+"/tokens", nil, req, &out); err != nil {
		return out, fmt.Errorf("mint token for install %q of workspace %q: %w", install, ws, err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Audit

// AuditQuery selects audit events; zero fields do not filter.
type AuditQuery struct {
	Workspace string
	Install   string
	Since     string // RFC 3339 time or duration back from now ("1h")
	After     int64  // only events with a larger id
	Limit     int
	Refused   bool // only refused requests
	// Repository, Upstream, Node (id), Status (404 or 4xx) and Until
	// (exclusive end, like Since) narrow the query further.
	Repository, Upstream, Node, Status, Until string
}

// Audit queries the audit trail (events in id order).
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]api.AuditEvent, error) {
	v := url.Values{}
	if q.Workspace != "" {
		v.Set("workspace", q.Workspace)
	}
	if q.Install != "" {
		v.Set("install", q.Install)
	}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Refused {
		v.Set("refused", "true")
	}
	for k, val := range map[string]string{"repository": q.Repository, "upstream": q.Upstream, "node": q.Node, "status": q.Status, "until": q.Until} {
		if val != "" {
			v.Set(k, val)
		}
	}
	var out api.AuditEvents
	if err := c.do(ctx, http.MethodGet, "/api/v1/audit", v, nil, &out); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out.Events, nil
}
