package tokensvc

import (
	"context"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Clusters is what the token service reads and writes in the store: the
// clusters and their nodes (enrolment, key proposals), the installs bound
// to a cluster, and their workspace's credentials (for sync). *store.SQL
// implements it.
type Clusters interface {
	ClusterByID(ctx context.Context, id string) (store.Cluster, error)
	ListClusters(ctx context.Context) ([]store.Cluster, error)
	// ProposeClusterJWKS records keys an agent offered; they are not
	// trusted until an operator approves them.
	ProposeClusterJWKS(ctx context.Context, id string, p store.JWKSProposal) error
	InstallsByCluster(ctx context.Context, clusterID string) ([]store.Install, error)
	// AkashLeaseClusters lists the clusters where the workspace's Akash
	// installs are served (its account has a lease namespace there).
	AkashLeaseClusters(ctx context.Context, workspaceID string) ([]string, error)
	CredentialsByWorkspaceID(ctx context.Context, workspaceID string) ([]store.Credential, error)
	// EnrolNode creates a node while consuming one use of the cluster's
	// join token, atomically.
	EnrolNode(ctx context.Context, clusterID, name string, secretHash []byte) (store.Node, error)
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
	// NodeContact records the agent's version and the time it was heard.
	NodeContact(ctx context.Context, nodeID, version string, t time.Time) error
}

var _ Clusters = (*store.SQL)(nil)
