package proxy

import (
	"context"

	"github.com/pullgate/pullgate/hub/store"
)

// State is what the proxy reads from the store: on every request the live
// install (and node) behind a token and the workspace's credentials with
// their sealed secrets; the workspace by name for cache warming.
// *store.SQL implements it.
type State interface {
	InstallByID(ctx context.Context, id string) (store.Install, error)
	// NodeByID returns the node and its secret hash.
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
	WorkspaceByID(ctx context.Context, id string) (store.Workspace, error)
	GetWorkspace(ctx context.Context, name string) (store.Workspace, error)
	// CredentialsByWorkspaceID lists the workspace's credentials
	// (metadata only).
	CredentialsByWorkspaceID(ctx context.Context, workspaceID string) ([]store.Credential, error)
	CredentialSecret(ctx context.Context, credentialID string, version int) (store.Sealed, error)
	// AkashLeaseBound reports whether a lease namespace of a cluster is
	// still there and owned by the workspace's Akash account.
	AkashLeaseBound(ctx context.Context, clusterID, namespace, workspaceID string) (bool, error)
}

var _ State = (*store.SQL)(nil)
