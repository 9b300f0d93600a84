// Package store holds the hub's persistent state: workspaces, registry
// credentials (secret material only in sealed form), installs, signing keys
// and the audit trail. The Store interface has one SQL implementation that
// runs on SQLite (embedded default) and is written to run on PostgreSQL too.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when the named object does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when an object with the same name already exists.
var ErrConflict = errors.New("already exists")

// Workspace is a tenant: it owns registry credentials and installs.
type Workspace struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Credential is a registry credential's metadata. The secret itself is kept
// apart (Sealed) so that listing never touches secret material.
type Credential struct {
	ID          string
	WorkspaceID string
	Name        string
	// Host is the normalised upstream host, optionally followed by a
	// repository prefix: "docker.io", "ghcr.io/org-a", "127.0.0.1:5000".
	Host string
	// Endpoint is where the registry API answers when that is not
	// https://<host> ("http://127.0.0.1:5000", "https://registry.corp:8443");
	// empty for the usual case. It lets images keep a port-less name.
	Endpoint string
	Kind     string // "basic", "token"
	Username string // not secret; empty for kinds without one
	Insecure bool   // plain HTTP to a non-loopback upstream
	// AllowPrivateNetwork lets the upstream (and its token realm) resolve to
	// loopback, private or other special-purpose addresses. Only an operator
	// sets it; tenant input (SDL imports) never does.
	AllowPrivateNetwork bool
	// RealmHosts are token-realm hosts the operator trusts for this
	// credential besides the upstream's own host and the built-in list.
	RealmHosts []string
	Enabled    bool
	Version    int // secret version, starts at 1, +1 on every secret update
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Sealed is secret material encrypted by package secrets. The store never
// sees plaintext.
type Sealed []byte

// CredentialUpdate changes a credential. Nil fields are left as they are.
// A non-nil Secret stores a new secret version.
type CredentialUpdate struct {
	Username *string
	Endpoint *string
	Insecure *bool
	Enabled  *bool
	// AllowPrivateNetwork and RealmHosts: see Credential.
	AllowPrivateNetwork *bool
	RealmHosts          *[]string
	Secret              Sealed
}

// Install is one deployment's right to pull.
type Install struct {
	ID             string
	WorkspaceID    string
	Name           string
	Cluster        string // cluster name, may be empty until the node side binds it
	Namespace      string
	ServiceAccount string
	Repos          []string // allow-list patterns; empty means everything
	Enabled        bool
	// Generation is bumped whenever previously issued tokens must stop
	// working (disable, repo change). Tokens carry the generation they were
	// minted at.
	Generation int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// InstallUpdate changes an install. Nil fields are left as they are. Any
// change that narrows access bumps Generation.
type InstallUpdate struct {
	Enabled *bool
	Repos   *[]string
}

// SigningKey is an install-token signing key. Private is sealed.
type SigningKey struct {
	KID       string
	Public    []byte
	Private   Sealed
	CreatedAt time.Time
}

// AuditEvent records one proxied manifest or blob request.
type AuditEvent struct {
	ID         int64
	Time       time.Time
	Workspace  string // workspace name
	Install    string // install name
	Cluster    string
	Node       string
	ClientAddr string
	Upstream   string // canonical upstream host
	Repository string
	Reference  string // tag or digest
	Kind       string // "manifest", "blob", "tags", "referrers"
	Method     string
	Bytes      int64
	Status     int
	Duration   time.Duration
}

// AuditQuery selects audit events. Zero fields do not filter.
type AuditQuery struct {
	Workspace string
	Install   string
	Since     time.Time
	AfterID   int64 // only events with a larger ID (for --follow)
	Limit     int   // 0 means a default of 1000
}

// Cluster is a set of nodes that pull through the hub.
type Cluster struct {
	ID   string
	Name string
	// WorkspaceID is set for a single-workspace cluster; empty for a shared
	// one (many workspaces, installs chosen by service-account token).
	WorkspaceID string
	// Service-account token verification (KEP-4412): the issuer's JWKS
	// (set by the operator or pinned on first use), the expected issuer
	// (optional) and audience.
	SAJWKS     []byte
	SAIssuer   string
	SAAudience string
	CreatedAt  time.Time
}

// Node is one enrolled node agent's identity. Its secret is stored hashed.
type Node struct {
	ID        string
	ClusterID string
	Name      string
	Revoked   bool
	CreatedAt time.Time
	RevokedAt time.Time
}

// Store is the hub's persistent state. All names are scoped: credentials
// and installs by workspace name.
type Store interface {
	CreateWorkspace(ctx context.Context, name string) (Workspace, error)
	GetWorkspace(ctx context.Context, name string) (Workspace, error)
	WorkspaceByID(ctx context.Context, id string) (Workspace, error)
	ListWorkspaces(ctx context.Context) ([]Workspace, error)
	// DeleteWorkspace removes the workspace and everything it owns.
	DeleteWorkspace(ctx context.Context, name string) error

	CreateCredential(ctx context.Context, workspace string, c Credential, secret Sealed) (Credential, error)
	GetCredential(ctx context.Context, workspace, name string) (Credential, error)
	ListCredentials(ctx context.Context, workspace string) ([]Credential, error)
	UpdateCredential(ctx context.Context, workspace, name string, u CredentialUpdate) (Credential, error)
	DeleteCredential(ctx context.Context, workspace, name string) error
	// CredentialSecret returns the sealed secret of the given version.
	CredentialSecret(ctx context.Context, credentialID string, version int) (Sealed, error)

	CreateInstall(ctx context.Context, workspace string, in Install) (Install, error)
	GetInstall(ctx context.Context, workspace, name string) (Install, error)
	// InstallByID is the proxy's per-request live-state lookup.
	InstallByID(ctx context.Context, id string) (Install, error)
	ListInstalls(ctx context.Context, workspace string) ([]Install, error)
	UpdateInstall(ctx context.Context, workspace, name string, u InstallUpdate) (Install, error)
	DeleteInstall(ctx context.Context, workspace, name string) error

	// CredentialsByWorkspaceID is the proxy's per-request lookup of the
	// workspace's credentials (metadata only).
	CredentialsByWorkspaceID(ctx context.Context, workspaceID string) ([]Credential, error)

	// Clusters. Cluster names are global; the join token is stored as a
	// hash and replaced by RotateJoinToken.
	CreateCluster(ctx context.Context, c Cluster, joinHash []byte) (Cluster, error)
	GetCluster(ctx context.Context, name string) (Cluster, error)
	ClusterByID(ctx context.Context, id string) (Cluster, error)
	ListClusters(ctx context.Context) ([]Cluster, error)
	DeleteCluster(ctx context.Context, name string) error
	ClusterJoinHash(ctx context.Context, id string) ([]byte, error)
	RotateJoinToken(ctx context.Context, name string, joinHash []byte) error
	// PinClusterJWKS sets the service-account JWKS only if none is set yet
	// (trust on first use) and reports whether it did.
	PinClusterJWKS(ctx context.Context, id string, jwks []byte) (bool, error)
	// InstallsByCluster lists the installs bound to a cluster (by name).
	InstallsByCluster(ctx context.Context, cluster string) ([]Install, error)

	// Nodes.
	CreateNode(ctx context.Context, clusterID, name string, secretHash []byte) (Node, error)
	// NodeByID returns the node and its secret hash.
	NodeByID(ctx context.Context, id string) (Node, []byte, error)
	ListNodes(ctx context.Context, cluster string) ([]Node, error)
	// RevokeNode revokes a node of the cluster, named by id or by name
	// (a name must be unambiguous).
	RevokeNode(ctx context.Context, cluster, node string) (Node, error)

	AddSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)

	AppendAudit(ctx context.Context, events []AuditEvent) error
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)

	Close() error
}
