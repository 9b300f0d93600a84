package api

import (
	"context"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Store is what the API reads and writes, one interface per resource.
// *store.SQL implements it.
type Store interface {
	WorkspaceStore
	CredentialStore
	InstallStore
	ClusterStore
	NodeStore
	AuditLog
	AccessStore
	TenantStore
	AkashStore
}

var _ Store = (*store.SQL)(nil)

// WorkspaceStore holds workspaces.
type WorkspaceStore interface {
	CreateWorkspace(ctx context.Context, name string) (store.Workspace, error)
	GetWorkspace(ctx context.Context, name string) (store.Workspace, error)
	WorkspaceByID(ctx context.Context, id string) (store.Workspace, error)
	ListWorkspaces(ctx context.Context) ([]store.Workspace, error)
	// DeleteWorkspace removes the workspace and everything it owns and
	// returns what it removed; while it has installs or clusters it
	// refuses with a *store.WorkspaceInUseError unless force is set.
	DeleteWorkspace(ctx context.Context, name string, force bool) (store.WorkspaceContents, error)
}

// CredentialStore holds a workspace's registry credentials; secrets only
// sealed.
type CredentialStore interface {
	CreateCredential(ctx context.Context, workspace string, c store.Credential, secret store.Sealed) (store.Credential, error)
	GetCredential(ctx context.Context, workspace, name string) (store.Credential, error)
	ListCredentials(ctx context.Context, workspace string) ([]store.Credential, error)
	UpdateCredential(ctx context.Context, workspace, name string, u store.CredentialUpdate) (store.Credential, error)
	DeleteCredential(ctx context.Context, workspace, name string) error
	CredentialSecret(ctx context.Context, credentialID string, version int) (store.Sealed, error)
}

// InstallStore holds a workspace's installs.
type InstallStore interface {
	CreateInstall(ctx context.Context, workspace string, in store.Install) (store.Install, error)
	GetInstall(ctx context.Context, workspace, name string) (store.Install, error)
	ListInstalls(ctx context.Context, workspace string) ([]store.Install, error)
	UpdateInstall(ctx context.Context, workspace, name string, u store.InstallUpdate) (store.Install, error)
	DeleteInstall(ctx context.Context, workspace, name string) error
}

// ClusterStore holds clusters, their join tokens and service-account keys.
type ClusterStore interface {
	CreateCluster(ctx context.Context, c store.Cluster, joinHash []byte) (store.Cluster, error)
	GetCluster(ctx context.Context, name string) (store.Cluster, error)
	ClusterByID(ctx context.Context, id string) (store.Cluster, error)
	ListClusters(ctx context.Context) ([]store.Cluster, error)
	// DeleteCluster refuses with a *store.ClusterInUseError while installs
	// are bound, unless force is set; then it unbinds and returns them.
	DeleteCluster(ctx context.Context, name string, force bool) ([]store.Install, error)
	RotateJoinTokenLimited(ctx context.Context, name string, joinHash []byte, limit store.JoinLimit) error
	SetClusterJWKS(ctx context.Context, name string, jwks []byte, issuer string) (store.Cluster, error)
	// ApproveClusterJWKS approves the pending proposal only if it is still
	// exactly proposed (what the operator checked); otherwise
	// store.ErrConflict.
	ApproveClusterJWKS(ctx context.Context, name string, proposed store.JWKSProposal, issuer string) (store.Cluster, error)
}

// AkashStore holds clusters' Akash settings and lease namespaces, and
// the Akash accounts that own workspaces.
type AkashStore interface {
	SetClusterAkash(ctx context.Context, name, provider, controller string) (store.Cluster, error)
	PutAkashLease(ctx context.Context, clusterID, namespace string, l akash.LeaseID) (bool, error)
	// ReplaceAkashLeases returns the namespaces added and removed.
	ReplaceAkashLeases(ctx context.Context, clusterID string, leases []akash.LeaseID) (added, removed []string, err error)
	DeleteAkashLease(ctx context.Context, clusterID, namespace string) error
	AkashLeasesByCluster(ctx context.Context, clusterID string) ([]store.AkashLease, error)
	AkashLeasesByWorkspace(ctx context.Context, workspace string) ([]store.AkashLease, error)
	EnsureAkashAccount(ctx context.Context, address, workspaceName string) (store.AkashAccount, bool, error)
}

// NodeStore holds the nodes enrolled in clusters.
type NodeStore interface {
	// NodeByID returns the node and its secret hash.
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
	ListNodes(ctx context.Context, cluster string) ([]store.Node, error)
	RevokeNode(ctx context.Context, cluster, node string) (store.Node, error)
}

// AuditLog reads the audit trail.
type AuditLog interface {
	QueryAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)
	AuditStats(ctx context.Context, q store.AuditQuery, by string, bucket time.Duration) ([]store.AuditBucket, error)
}

// AccessStore holds users, their workspace memberships and API tokens,
// console sessions and the activity log.
type AccessStore interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	// DeleteUser takes the user's memberships, tokens and sessions along.
	DeleteUser(ctx context.Context, name string) error
	AddMember(ctx context.Context, workspace, user string, role store.Role) (store.Membership, error)
	ListMembers(ctx context.Context, workspace string) ([]store.Membership, error)
	MembershipsOf(ctx context.Context, userID string) ([]store.Membership, error)
	// UpdateMember and RemoveMember refuse to leave the workspace without
	// an owner when keepOwner is set (store.ErrLastOwner).
	UpdateMember(ctx context.Context, workspace, user string, role store.Role, keepOwner bool) (store.Membership, error)
	RemoveMember(ctx context.Context, workspace, user string, keepOwner bool) (store.Membership, error)

	CreateAPIToken(ctx context.Context, user string, t store.APIToken, hash []byte) (store.APIToken, error)
	APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error)
	GetAPIToken(ctx context.Context, id string) (store.APIToken, error)
	ListAPITokens(ctx context.Context, userID string) ([]store.APIToken, error)
	// RevokeAPIToken with userID set finds only that user's token.
	RevokeAPIToken(ctx context.Context, id, userID string) (store.APIToken, error)
	TouchAPIToken(ctx context.Context, id string, t time.Time) error

	CreateSession(ctx context.Context, se store.Session, hash []byte) (store.Session, error)
	SessionByHash(ctx context.Context, hash []byte) (store.Session, error)
	TouchSession(ctx context.Context, id string, t time.Time) error
	DeleteSession(ctx context.Context, id string) error

	AppendActivity(ctx context.Context, a store.Activity) error
	QueryActivity(ctx context.Context, q store.ActivityQuery) ([]store.Activity, error)
}
