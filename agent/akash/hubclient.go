package akash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	pkgakash "github.com/pullgate/pullgate/pkg/akash"
	"github.com/pullgate/pullgate/pkg/natstls"
)

// Defaults of the hub client.
const (
	DefaultRequestTimeout = 15 * time.Second
	DefaultAttempts       = 4
	DefaultBackoff        = 500 * time.Millisecond
	maxResponse           = 1 << 20
)

// HubClient calls the hub's controller routes for one cluster
// (/api/v1/clusters/{cluster}/akash/...), authenticated with the
// controller's projected service-account token.
type HubClient struct {
	base      *url.URL
	cluster   string
	tokenFile string
	http      *http.Client
	attempts  int
	backoff   time.Duration
}

// HubOption configures a HubClient.
type HubOption func(*hubConfig)

type hubConfig struct {
	caFile    string
	insecure  bool
	timeout   time.Duration
	attempts  int
	backoff   time.Duration
	transport http.RoundTripper
}

// WithHubCA verifies the hub's certificate against this PEM file instead
// of the system roots.
func WithHubCA(file string) HubOption { return func(c *hubConfig) { c.caFile = file } }

// WithInsecureHub allows an http:// hub URL to a host other than loopback:
// the service-account token then crosses the network in clear text.
func WithInsecureHub(insecure bool) HubOption { return func(c *hubConfig) { c.insecure = insecure } }

// WithRetry sets how often a call is tried (at least once) and the first
// pause between tries (doubled each time).
func WithRetry(attempts int, backoff time.Duration) HubOption {
	return func(c *hubConfig) { c.attempts, c.backoff = attempts, backoff }
}

// WithRequestTimeout bounds each HTTP request.
func WithRequestTimeout(d time.Duration) HubOption { return func(c *hubConfig) { c.timeout = d } }

// NewHubClient checks the URL, the CA file and the cluster name. The token
// file is read per request (the kubelet rotates projected tokens), so it
// need not exist yet.
func NewHubClient(hubURL, cluster, tokenFile string, opts ...HubOption) (*HubClient, error) {
	cfg := hubConfig{timeout: DefaultRequestTimeout, attempts: DefaultAttempts, backoff: DefaultBackoff}
	for _, o := range opts {
		o(&cfg)
	}
	u, err := url.Parse(hubURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("hub URL %q: want https://HOST[:PORT]", hubURL)
	}
	if u.Scheme == "http" && !cfg.insecure && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("hub URL %q: http:// sends the service-account token in clear text; use https:// (or allow it with --insecure-hub)", hubURL)
	}
	if cluster == "" || strings.ContainsAny(cluster, "/?#") {
		return nil, fmt.Errorf("cluster name %q: want the hub's name of this cluster", cluster)
	}
	if tokenFile == "" {
		return nil, errors.New("token file: want the path of the projected service-account token")
	}
	if cfg.attempts < 1 {
		cfg.attempts = 1
	}
	tc, err := natstls.ClientConfig(cfg.caFile)
	if err != nil {
		return nil, fmt.Errorf("hub CA: %w", err)
	}
	rt := cfg.transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		// Never hand the token to a proxy picked up from the environment
		// for a cluster-internal hub by accident: the operator names the
		// URL it must go to.
		t.Proxy = nil
		rt = t
	}
	return &HubClient{
		base:      u,
		cluster:   cluster,
		tokenFile: tokenFile,
		http: &http.Client{Timeout: cfg.timeout, Transport: rt,
			// A redirect could carry the token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		attempts: cfg.attempts,
		backoff:  cfg.backoff,
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Service is one SDL service's images and registry credentials, as the
// credentials import route takes them.
type Service struct {
	Name        string       `json:"name"`
	Images      []string     `json:"images"`
	Credentials *Credentials `json:"credentials,omitempty"`
}

// Credentials is the SDL's credentials block. Password is never logged:
// String hides it.
type Credentials struct {
	Host     string `json:"host"`
	Email    string `json:"email"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// String keeps the password out of logs and error messages.
func (c Credentials) String() string {
	return fmt.Sprintf("{host:%s username:%s password:<redacted>}", c.Host, c.Username)
}

// GoString keeps the password out of %#v.
func (c Credentials) GoString() string { return c.String() }

// ImportResult is the hub's answer to a credentials import: the workspace
// the lease owner has, the hub's host, and upstream image → hub image.
type ImportResult struct {
	Workspace string            `json:"workspace"`
	Hub       string            `json:"hub"`
	Images    map[string]string `json:"images"`
}

// PutLeases replaces the cluster's set of leases on the hub.
func (c *HubClient) PutLeases(ctx context.Context, leases []pkgakash.LeaseID) (int, error) {
	if leases == nil {
		leases = []pkgakash.LeaseID{}
	}
	var out struct {
		Leases int `json:"leases"`
	}
	err := c.call(ctx, http.MethodPut, c.path(), map[string]any{"leases": leases}, &out, http.StatusOK)
	return out.Leases, err
}

// PutLease records one lease namespace on the hub.
func (c *HubClient) PutLease(ctx context.Context, l pkgakash.LeaseID) error {
	return c.call(ctx, http.MethodPut, c.path(l.Namespace()), l, nil, http.StatusOK)
}

// DeleteLease removes a lease namespace on the hub. A lease the hub does
// not know is gone already: not an error.
func (c *HubClient) DeleteLease(ctx context.Context, namespace string) error {
	return c.call(ctx, http.MethodDelete, c.path(namespace), nil, nil, http.StatusNoContent, http.StatusNotFound)
}

// ImportCredentials hands a lease's SDL credentials to the hub, which
// stores them in the lease owner's workspace.
func (c *HubClient) ImportCredentials(ctx context.Context, namespace string, services []Service) (ImportResult, error) {
	var out ImportResult
	err := c.call(ctx, http.MethodPost, c.path(namespace, "credentials"), map[string]any{"services": services}, &out, http.StatusOK)
	return out, err
}

func (c *HubClient) path(parts ...string) string {
	p := "/api/v1/clusters/" + url.PathEscape(c.cluster) + "/akash/leases"
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// hubError is a refusal by the hub (4xx): retrying does not help.
type hubError struct {
	op, status, msg string
}

func (e *hubError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%s: hub answered %s", e.op, e.status)
	}
	return fmt.Sprintf("%s: hub answered %s: %s", e.op, e.status, e.msg)
}

// call sends one request, retrying network errors, 429 and 5xx with a
// doubling pause, and decodes a wanted answer into out.
func (c *HubClient) call(ctx context.Context, method, path string, in, out any, want ...int) error {
	op := method + " " + path
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
	}
	pause := c.backoff
	var last error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), last)
			case <-t.C:
			}
			pause *= 2
		}
		retry, err := c.once(ctx, op, method, path, body, out, want)
		if err == nil || !retry {
			return err
		}
		last = err
	}
	return fmt.Errorf("%s: gave up after %d tries: %w", op, c.attempts, last)
}

func (c *HubClient) once(ctx context.Context, op, method, path string, body []byte, out any, want []int) (retry bool, err error) {
	// Re-read per request: the kubelet replaces the projected token well
	// before it expires.
	tok, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return true, fmt.Errorf("%s: read service-account token: %w", op, err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return true, fmt.Errorf("%s: service-account token file %s is empty", op, c.tokenFile)
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the URL, never the header.
		return ctx.Err() == nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return true, fmt.Errorf("%s: read answer: %w", op, err)
	}
	for _, w := range want {
		if resp.StatusCode != w {
			continue
		}
		if out != nil && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusNoContent {
			if err := json.Unmarshal(data, out); err != nil {
				return false, fmt.Errorf("%s: decode answer: %w", op, err)
			}
		}
		return false, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	herr := &hubError{op: op, status: resp.Status, msg: sanitize(e.Error)}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, herr
}

// sanitize keeps a hub message to one short printable line.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
