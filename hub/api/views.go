package api

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/pullgate/pullgate/hub/sdl"
	"github.com/pullgate/pullgate/hub/store"
)

// This file holds every JSON type the API reads or writes. The CLI uses the
// same types, so the wire format has one definition.

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Password is an upstream secret in a request body. It marshals as a plain
// JSON string but never prints: %v, %s, %#v and slog all show REDACTED.
type Password string

// String hides the password.
func (Password) String() string { return "REDACTED" }

// GoString hides the password from %#v.
func (Password) GoString() string { return "REDACTED" }

// LogValue hides the password from slog.
func (Password) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// CreateWorkspaceRequest is the body of POST /api/v1/workspaces.
type CreateWorkspaceRequest struct {
	Name string `json:"name"`
}

// Workspace is a workspace as the API shows it.
type Workspace struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// WorkspaceList is the body of GET /api/v1/workspaces.
type WorkspaceList struct {
	Workspaces []Workspace `json:"workspaces"`
}

// CreateRegistryRequest is the body of POST .../registries.
type CreateRegistryRequest struct {
	Name     string   `json:"name"`
	Host     string   `json:"host"`
	Endpoint string   `json:"endpoint,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Username string   `json:"username,omitempty"`
	Password Password `json:"password"`
	Insecure bool     `json:"insecure,omitempty"`
	// AllowPrivateNetwork lets the upstream resolve to loopback, private or
	// other special-purpose addresses (refused by default).
	AllowPrivateNetwork bool `json:"allow_private_network,omitempty"`
	// RealmHosts are token-realm hosts trusted besides the upstream's own.
	RealmHosts []string `json:"realm_hosts,omitempty"`
	// ECR and ACR hold the non-secret parameters of kinds ecr and acr
	// (hub/api/registry_kinds.go); the secret is always Password.
	ECR *ECRParams `json:"ecr,omitempty"`
	ACR *ACRParams `json:"acr,omitempty"`
}

// LogValue shows the request to slog without its password (a JSON
// handler would otherwise marshal the struct, password included).
func (r CreateRegistryRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("host", r.Host), slog.String("endpoint", r.Endpoint),
		slog.String("kind", r.Kind), slog.String("username", r.Username), slog.Any("password", r.Password),
		slog.Bool("insecure", r.Insecure), slog.Bool("allow_private_network", r.AllowPrivateNetwork),
		slog.Any("realm_hosts", r.RealmHosts))
}

// UpdateRegistryRequest is the body of PATCH .../registries/{name}. Absent
// fields are left as they are; a password stores a new secret version.
type UpdateRegistryRequest struct {
	// Kind changes the credential's kind (basic, token, ecr, acr, gcp); a
	// different kind needs Password too, since the secret's form changes.
	Kind     *string   `json:"kind,omitempty"`
	Username *string   `json:"username,omitempty"`
	Endpoint *string   `json:"endpoint,omitempty"` // "" clears it
	Password *Password `json:"password,omitempty"`
	Insecure *bool     `json:"insecure,omitempty"`
	// AllowPrivateNetwork and RealmHosts: see CreateRegistryRequest; an
	// empty realm_hosts list clears them.
	AllowPrivateNetwork *bool     `json:"allow_private_network,omitempty"`
	RealmHosts          *[]string `json:"realm_hosts,omitempty"`
	// ECR and ACR replace the kind's parameters (with a new password);
	// absent, the stored ones are kept.
	ECR *ECRParams `json:"ecr,omitempty"`
	ACR *ACRParams `json:"acr,omitempty"`
}

// LogValue shows the request to slog without its password.
func (r UpdateRegistryRequest) LogValue() slog.Value {
	var attrs []slog.Attr
	if r.Username != nil {
		attrs = append(attrs, slog.String("username", *r.Username))
	}
	if r.Endpoint != nil {
		attrs = append(attrs, slog.String("endpoint", *r.Endpoint))
	}
	if r.Password != nil {
		attrs = append(attrs, slog.Any("password", *r.Password))
	}
	if r.Insecure != nil {
		attrs = append(attrs, slog.Bool("insecure", *r.Insecure))
	}
	if r.AllowPrivateNetwork != nil {
		attrs = append(attrs, slog.Bool("allow_private_network", *r.AllowPrivateNetwork))
	}
	if r.RealmHosts != nil {
		attrs = append(attrs, slog.Any("realm_hosts", *r.RealmHosts))
	}
	return slog.GroupValue(attrs...)
}

// TestRegistryRequest is the (optional) body of POST .../registries/{name}/test.
type TestRegistryRequest struct {
	Repository string `json:"repository,omitempty"`
}

// Registry is a registry credential's metadata. It has no field for secret
// material on purpose.
type Registry struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Endpoint string `json:"endpoint"`
	Kind     string `json:"kind"`
	Username string `json:"username"`
	Insecure bool   `json:"insecure"`
	// AllowPrivateNetwork: the operator allowed special-purpose addresses.
	AllowPrivateNetwork bool `json:"allow_private_network"`
	// RealmHosts: token-realm hosts trusted besides the upstream's own.
	RealmHosts []string  `json:"realm_hosts,omitempty"`
	Enabled    bool      `json:"enabled"`
	Version    int       `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Auth is how the credential authenticates (password, token, aws_keys,
	// aws_assume_role, ecr_token, service_principal, json_key, ...);
	// ExpiresAt is when a pasted token stops working; Warnings say what
	// needs attention. None of them is secret.
	Auth      string     `json:"auth,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	// Installs (list and get only) are the workspace's installs whose
	// allow-list reaches the host: the ones disabling or deleting the
	// credential affects.
	Installs []string `json:"installs,omitempty"`
}

// RegistryList is the body of GET .../registries.
type RegistryList struct {
	Registries []Registry `json:"registries"`
}

// CreateInstallRequest is the body of POST .../installs.
type CreateInstallRequest struct {
	Name  string   `json:"name"`
	Repos []string `json:"repos,omitempty"`
	// AllRepos says explicitly that the install may pull everything the
	// workspace's registries reach; it excludes Repos. One of the two is
	// required: the broad grant is never a default.
	AllRepos       bool   `json:"all_repos,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	ServiceAccount string `json:"service_account,omitempty"`
	// Akash serves the install in its workspace's Akash lease namespaces:
	// "all" or a deployment sequence number (dseq). It excludes cluster
	// and namespace.
	Akash string `json:"akash,omitempty"`
}

// UpdateInstallRequest is the body of PATCH .../installs/{name}. Absent
// fields are left as they are.
type UpdateInstallRequest struct {
	// Repos replaces the allow-list (an empty one is refused); AllRepos
	// allows everything the workspace's registries reach.
	Repos    *[]string `json:"repos,omitempty"`
	AllRepos bool      `json:"all_repos,omitempty"`
	// Cluster binds the install to a cluster ("" unbinds it); Namespace
	// and ServiceAccount change what it is matched to. Checked as on
	// create; a changed binding bumps the generation.
	Cluster        *string `json:"cluster,omitempty"`
	Namespace      *string `json:"namespace,omitempty"`
	ServiceAccount *string `json:"service_account,omitempty"`
	// Akash changes the Akash scope ("" ends it); it excludes a cluster
	// or namespace. A change bumps the generation.
	Akash *string `json:"akash,omitempty"`
}

// Install is an install as the API shows it.
type Install struct {
	Name           string   `json:"name"`
	Cluster        string   `json:"cluster"`
	Namespace      string   `json:"namespace"`
	ServiceAccount string   `json:"service_account"`
	Repos          []string `json:"repos"` // empty: everything the workspace's registries reach
	Enabled        bool     `json:"enabled"`
	Generation     int64    `json:"generation"`
	// Akash is the install's Akash scope: "all", a dseq, or "" (none).
	Akash     string    `json:"akash"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Warnings (create and update only) name allow-list patterns that no
	// registry credential of the workspace covers: a typo, or a credential
	// still to add.
	Warnings []string `json:"warnings,omitempty"`
}

// DeleteWorkspaceResult is the body of DELETE /api/v1/workspaces/{ws}:
// what went with the workspace, each by name.
type DeleteWorkspaceResult struct {
	Installs   []string `json:"installs"`
	Registries []string `json:"registries"`
	// Clusters are the workspace's own clusters, deleted with their node
	// identities and join tokens (shared clusters stay).
	Clusters []DeletedCluster `json:"clusters"`
}

// DeletedCluster is a cluster deleted with its workspace.
type DeletedCluster struct {
	Name  string `json:"name"`
	Nodes int    `json:"nodes"`
}

func deleteWorkspaceView(c store.WorkspaceContents) DeleteWorkspaceResult {
	out := DeleteWorkspaceResult{Installs: []string{}, Registries: []string{}, Clusters: []DeletedCluster{}}
	out.Installs = append(out.Installs, c.Installs...)
	out.Registries = append(out.Registries, c.Credentials...)
	for _, cl := range c.Clusters {
		out.Clusters = append(out.Clusters, DeletedCluster{Name: cl.Name, Nodes: cl.Nodes})
	}
	return out
}

// InstallList is the body of GET .../installs.
type InstallList struct {
	Installs []Install `json:"installs"`
}

// MintTokenRequest is the (optional) body of POST .../installs/{name}/tokens.
type MintTokenRequest struct {
	TTL string `json:"ttl,omitempty"` // Go duration, default 10m, 1m..24h
}

// Token is a freshly minted install token. It is valid against the hub
// only, never against an upstream registry.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Install   string    `json:"install"`
	Workspace string    `json:"workspace"`
}

// AuditEvent is one proxied or refused request (or, with Count > 1, an
// aggregate of refused ones).
type AuditEvent struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Workspace string    `json:"workspace"`
	Install   string    `json:"install"`
	Cluster   string    `json:"cluster"` // the cluster's id
	Node      string    `json:"node"`    // the node's id
	// ClusterName and NodeName are their names, empty when the cluster
	// or node has since been deleted.
	ClusterName string `json:"cluster_name,omitempty"`
	NodeName    string `json:"node_name,omitempty"`
	ClientAddr  string `json:"client_addr"`
	Upstream    string `json:"upstream"`
	Repository  string `json:"repository"`
	Reference   string `json:"reference"`
	Kind        string `json:"kind"`
	Method      string `json:"method"`
	Bytes       int64  `json:"bytes"`
	Status      int    `json:"status"`
	DurationMS  int64  `json:"duration_ms"`
	// Reason is set for a refused request (why); Count > 1 for refusals
	// aggregated into one event.
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
	// Cache says how the pull-through cache answered: hit, miss, stale
	// (served while the upstream was down) or empty (not cached).
	Cache string `json:"cache,omitempty"`
}

// AuditEvents is the body of GET /api/v1/audit.
type AuditEvents struct {
	Events []AuditEvent `json:"events"`
}

func workspaceView(w store.Workspace) Workspace {
	return Workspace{Name: w.Name, CreatedAt: w.CreatedAt.UTC()}
}

func registryView(c store.Credential) Registry {
	return Registry{
		Name:                c.Name,
		Host:                c.Host,
		Endpoint:            c.Endpoint,
		Kind:                c.Kind,
		Username:            c.Username,
		Insecure:            c.Insecure,
		AllowPrivateNetwork: c.AllowPrivateNetwork,
		RealmHosts:          c.RealmHosts,
		Enabled:             c.Enabled,
		Version:             c.Version,
		CreatedAt:           c.CreatedAt.UTC(),
		UpdatedAt:           c.UpdatedAt.UTC(),
	}
}

func installView(in store.Install) Install {
	repos := in.Repos
	if repos == nil {
		repos = []string{}
	}
	return Install{
		Name:           in.Name,
		Cluster:        in.Cluster,
		Namespace:      in.Namespace,
		ServiceAccount: in.ServiceAccount,
		Repos:          repos,
		Enabled:        in.Enabled,
		Generation:     in.Generation,
		Akash:          in.Akash,
		CreatedAt:      in.CreatedAt.UTC(),
		UpdatedAt:      in.UpdatedAt.UTC(),
	}
}

func auditView(e store.AuditEvent) AuditEvent {
	return AuditEvent{
		ID:         e.ID,
		Time:       e.Time.UTC(),
		Workspace:  e.Workspace,
		Install:    e.Install,
		Cluster:    e.Cluster,
		Node:       e.Node,
		ClientAddr: e.ClientAddr,
		Upstream:   e.Upstream,
		Repository: e.Repository,
		Reference:  e.Reference,
		Kind:       e.Kind,
		Method:     e.Method,
		Bytes:      e.Bytes,
		Status:     e.Status,
		DurationMS: e.Duration.Milliseconds(),
		Reason:     e.Reason,
		Count:      max(e.Count, 1),
		Cache:      e.Cache,
	}
}

// SDLImportRequest is the body of POST .../sdl-imports: an Akash SDL (or a
// provider manifest) whose credentials become the workspace's registry
// credentials and one install (hub/api/sdl.go).
type SDLImportRequest struct {
	// SDL is the SDL's YAML text (or a manifest as JSON text).
	SDL string `json:"sdl,omitempty"`
	// Manifest is a provider manifest (the JSON list of groups), as JSON.
	Manifest  json.RawMessage `json:"manifest,omitempty"`
	Cluster   string          `json:"cluster"`
	Namespace string          `json:"namespace"`
	Install   string          `json:"install,omitempty"`
	DryRun    bool            `json:"dry_run,omitempty"`
	// Rewrite asks for the document with the private images pointed at
	// the hub (HubHost, else the hub's public URL, else the request's host)
	// and the credentials removed.
	Rewrite bool   `json:"rewrite,omitempty"`
	HubHost string `json:"hub_host,omitempty"`
	// CredentialScope is "host" (default) or "repository" (sdl.Params).
	CredentialScope string `json:"credential_scope,omitempty"`
}

// LogValue shows the request to slog without the document (it holds
// passwords).
func (r SDLImportRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cluster", r.Cluster), slog.String("namespace", r.Namespace),
		slog.String("install", r.Install), slog.Bool("dry_run", r.DryRun), slog.Int("sdl_bytes", len(r.SDL)), slog.Int("manifest_bytes", len(r.Manifest)))
}

// SDLImport is the answer of POST .../sdl-imports: what was created,
// updated or left unchanged, and the rewritten document when asked for.
// It never holds a password.
type SDLImport struct {
	sdl.Report
	Rewritten string `json:"rewritten,omitempty"`
}
