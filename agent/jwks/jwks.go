// Package jwks finds the cluster's service-account issuer keys (a JWKS
// document) so the agent can offer them to the hub on resync
// (wire.SyncRequest.JWKS). The hub never trusts an offer by itself: one that
// differs from the keys an operator approved is recorded as a proposal the
// operator reviews and approves (pullgate-hub cluster jwks show|approve).
//
// In a pod the keys come from the Kubernetes API server's
// /openid/v1/jwks, asked with the pod's own service-account token (the
// default RBAC lets every service account read it); elsewhere from a file.
package jwks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// MaxSize bounds a JWKS document.
const MaxSize = 64 << 10

// Default in-cluster locations.
const (
	ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	Path              = "/openid/v1/jwks"
)

// ErrNotInCluster: no Kubernetes service environment.
var ErrNotInCluster = errors.New("not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset)")

// Source returns the current JWKS document.
type Source func(ctx context.Context) (json.RawMessage, error)

// Check accepts a JSON object with a non-empty "keys" array; the hub
// validates the keys themselves.
func Check(data []byte) (json.RawMessage, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("jwks: larger than %d bytes", MaxSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: not a JSON key set: %w", err)
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("jwks: no keys")
	}
	return json.RawMessage(data), nil
}

// File reads a JWKS document from path on every call.
func File(path string) Source {
	return func(context.Context) (json.RawMessage, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("jwks: read %s: %w", path, err)
		}
		return Check(data)
	}
}

type inCluster struct {
	url, tokenFile, caFile string
	client                 *http.Client
}

// Option configures InCluster.
type Option func(*inCluster)

// WithAPIServer overrides the API server URL (tests).
func WithAPIServer(u string) Option { return func(c *inCluster) { c.url = strings.TrimSuffix(u, "/") } }

// WithServiceAccountDir overrides where token and ca.crt are read (tests).
func WithServiceAccountDir(dir string) Option {
	return func(c *inCluster) { c.tokenFile, c.caFile = dir+"/token", dir+"/ca.crt" }
}

// InCluster fetches the keys, and the issuer of the tokens they sign, from
// the API server of the pod's cluster, over one client. getenv is
// os.Getenv in production.
func InCluster(getenv func(string) string, opts ...Option) (Source, IssuerSource, error) {
	c, err := newInCluster(getenv, opts...)
	if err != nil {
		return nil, nil, err
	}
	return c.fetch, c.issuer, nil
}

func newInCluster(getenv func(string) string, opts ...Option) (*inCluster, error) {
	c := &inCluster{tokenFile: ServiceAccountDir + "/token", caFile: ServiceAccountDir + "/ca.crt"}
	if h, p := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT"); h != "" && p != "" {
		c.url = "https://" + net.JoinHostPort(h, p)
	}
	for _, o := range opts {
		o(c)
	}
	if c.url == "" {
		return nil, ErrNotInCluster
	}
	ca, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("jwks: API server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("jwks: no certificate in %s", c.caFile)
	}
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: nil,
	}}
	return c, nil
}

func (c *inCluster) fetch(ctx context.Context) (json.RawMessage, error) {
	data, err := c.get(ctx, Path, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, err
	}
	return Check(data)
}

// get reads path from the API server with the pod's service-account token.
func (c *inCluster) get(ctx context.Context, path, accept string) ([]byte, error) {
	tok, err := os.ReadFile(c.tokenFile) // re-read: the kubelet rotates it
	if err != nil {
		return nil, fmt.Errorf("jwks: service-account token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+path, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Accept", accept)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: GET %s: %s", path, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: GET %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("jwks: GET %s: larger than %d bytes", path, MaxSize)
	}
	return data, nil
}
