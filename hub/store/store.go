// Package store holds the hub's persistent state: workspaces, registry
// credentials (secret material only in sealed form), installs, signing keys
// and the audit trail. SQL keeps it on SQLite (embedded default) or
// PostgreSQL, with the same queries. Its consumers each declare the few
// methods they use as an interface of their own (proxy.State,
// tokensvc.Clusters, api.Store, ...). All names are scoped: credentials and
// installs by workspace name.
package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned when the named object does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when an object with the same name already exists.
var ErrConflict = errors.New("already exists")

// ErrInvalid is returned when an argument is malformed, for example a name
// that does not match the naming rules. The wrapping error names the field.
var ErrInvalid = errors.New("invalid")

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
	// Kind changes the credential's kind; a new kind needs a new Secret.
	Kind     *string
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
	ID          string
	WorkspaceID string
	Name        string
	// Cluster names the cluster the install is bound to (empty: none). On
	// create it is the input; the binding itself is ClusterID, so a later
	// cluster of the same name never inherits the install.
	Cluster        string
	ClusterID      string
	Namespace      string
	ServiceAccount string
	Repos          []string // allow-list patterns; empty means everything
	Enabled        bool
	// Generation is bumped whenever previously issued tokens must stop
	// working (disable, repo change). Tokens carry the generation they were
	// minted at.
	Generation int64
	// Akash marks an install for Akash leases: "" (not), "all" (every
	// lease namespace of the workspace's Akash account) or a deployment
	// sequence number in decimal (only that deployment's leases). Such an
	// install has no cluster or namespace of its own.
	Akash string
	// Lease is set only on the copies of an Akash install that
	// InstallsByCluster returns: the lease namespace the copy serves
	// (also its Namespace). Never stored.
	Lease     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// InstallUpdate changes an install. Nil fields are left as they are. Any
// change that narrows access bumps Generation.
type InstallUpdate struct {
	Enabled *bool
	Repos   *[]string
	// Cluster binds the install to the named cluster ("" unbinds it);
	// Namespace and ServiceAccount change what it is matched to. They are
	// checked as on create (the cluster exists, is the workspace's own or
	// shared, a shared one needs a namespace no other workspace uses), and
	// any change bumps Generation: tokens minted for the old binding stop
	// working.
	Cluster        *string
	Namespace      *string
	ServiceAccount *string
	// Akash changes the install's Akash scope (see Install.Akash); a
	// change bumps Generation. A scope and a cluster binding exclude each
	// other.
	Akash *string
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
	// Reason is empty for a request the hub served (whatever the upstream
	// answered); for a refused one it says why ("expired",
	// "install_disabled", "signature", ...); "stream_cut:<why>" for a
	// stream cut by a revoke.
	Reason string
	// Cache says how the pull-through cache answered: "hit", "miss",
	// "stale" (served while the upstream was down), or empty when the
	// cache was not used.
	Cache string
	// Count is how many requests the event stands for: refusals beyond a
	// rate are aggregated into one event per reason and minute. 0 means 1.
	Count int64
}

// AuditQuery selects audit events. Zero fields do not filter.
type AuditQuery struct {
	Workspace string
	// Workspaces, when not nil, keeps only events of these workspaces
	// (names); an empty non-nil list matches nothing. A member's query is
	// limited to its workspaces this way.
	Workspaces []string
	Install    string
	Since      time.Time
	AfterID    int64 // only events with a larger ID (for --follow)
	Refused    bool  // only refused requests (Reason set)
	Limit      int   // 0 means a default of 1000
	// Repository, Upstream and Node (the node's id) match exactly;
	// StatusMin..StatusMax bound the status (0: no bound); Until is the
	// exclusive end of the time range; BeforeID keeps events with a
	// smaller ID; Desc returns the newest first (paging back with
	// BeforeID).
	Repository string
	Upstream   string
	Node       string
	StatusMin  int
	StatusMax  int
	Until      time.Time
	BeforeID   int64
	Desc       bool

	// WorkspaceSince, with Workspaces, keeps a named workspace's events
	// from the given time on (its creation): older ones are of a deleted
	// workspace of the same name.
	WorkspaceSince map[string]time.Time
}

// Cluster is a set of nodes that pull through the hub.
type Cluster struct {
	ID   string
	Name string
	// WorkspaceID is set for a single-workspace cluster; empty for a shared
	// one (many workspaces, installs chosen by service-account token).
	WorkspaceID string
	// Service-account token verification (KEP-4412): the issuer's JWKS and
	// issuer as set or approved by an operator (never by a node), and the
	// expected audience.
	SAJWKS     []byte
	SAIssuer   string
	SAAudience string
	// Proposal is the last key set an agent offered that differs from the
	// approved one; it is only shown to the operator, never trusted.
	Proposal JWKSProposal
	// JoinUsesLeft is how many more enrolments the join token allows; -1
	// is unlimited (a reusable token).
	JoinUsesLeft int64
	// JoinExpiresAt is when the join token stops working; zero is never.
	JoinExpiresAt time.Time
	// AkashProvider is the provider address (akash1...) whose leases the
	// cluster runs ("" = none); AkashController is "namespace:name" of
	// the service account of its binding controller, the only one whose
	// tokens may report lease namespaces. Only a shared cluster has them.
	AkashProvider   string
	AkashController string
	CreatedAt       time.Time
}

// JWKSProposal is a service-account key set (and issuer) an agent offered
// for its cluster. Zero when there is none.
type JWKSProposal struct {
	JWKS   []byte
	Issuer string // as the agent found it; may be empty
	NodeID string // the node that offered it
	At     time.Time
}

// JoinLimit restricts a join token: Uses enrolments (0: unlimited) until
// ExpiresAt (zero: never).
type JoinLimit struct {
	Uses      int64
	ExpiresAt time.Time
}

// ClusterInUseError refuses deleting a cluster that installs are still
// bound to. It wraps ErrConflict.
type ClusterInUseError struct {
	Cluster  string
	Installs []string // "workspace/install"
}

func (e *ClusterInUseError) Error() string {
	return fmt.Sprintf("cluster %q still has %d install(s) bound to it: %s; delete them first, or delete with force to unbind them",
		e.Cluster, len(e.Installs), strings.Join(e.Installs, ", "))
}

func (e *ClusterInUseError) Unwrap() error { return ErrConflict }

// WorkspaceContents is what a workspace owns, by name: what deleting it
// removes.
type WorkspaceContents struct {
	Installs    []string
	Credentials []string
	// Clusters are the workspace's single-workspace clusters; shared
	// clusters belong to no workspace and stay.
	Clusters []WorkspaceCluster
}

// WorkspaceCluster is a single-workspace cluster and how many nodes are
// enrolled in it.
type WorkspaceCluster struct {
	Name  string
	Nodes int
}

// WorkspaceInUseError refuses deleting a workspace that still has installs
// or clusters. It wraps ErrConflict.
type WorkspaceInUseError struct {
	Workspace string
	Contents  WorkspaceContents
}

func (e *WorkspaceInUseError) Error() string {
	return fmt.Sprintf("workspace %q still has %s; delete them first, or delete with force to remove them all",
		e.Workspace, e.Contents.Summary())
}

func (e *WorkspaceInUseError) Unwrap() error { return ErrConflict }

// Summary says what c holds, counts and names:
// `2 install(s) (api, web), 1 cluster(s) (edge, 3 node(s)), 1 registry credential(s) (gh)`.
func (c WorkspaceContents) Summary() string {
	var parts []string
	if len(c.Installs) > 0 {
		parts = append(parts, fmt.Sprintf("%d install(s) (%s)", len(c.Installs), strings.Join(c.Installs, ", ")))
	}
	if len(c.Clusters) > 0 {
		cs := make([]string, len(c.Clusters))
		for i, cl := range c.Clusters {
			cs[i] = fmt.Sprintf("%s, %d node(s)", cl.Name, cl.Nodes)
		}
		parts = append(parts, fmt.Sprintf("%d cluster(s) (%s)", len(c.Clusters), strings.Join(cs, "; ")))
	}
	if len(c.Credentials) > 0 {
		parts = append(parts, fmt.Sprintf("%d registry credential(s) (%s)", len(c.Credentials), strings.Join(c.Credentials, ", ")))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// ErrJoinTokenSpent refuses a join token that has no enrolments left or has
// expired.
var ErrJoinTokenSpent = errors.New("join token used up or expired")

// Node is one enrolled node agent's identity. Its secret is stored hashed.
type Node struct {
	ID        string
	ClusterID string
	Name      string
	Revoked   bool
	CreatedAt time.Time
	RevokedAt time.Time
	// AgentVersion and LastSeenAt are what the hub last heard from the
	// node's agent (NodeContact): zero until then.
	AgentVersion string
	LastSeenAt   time.Time
}
