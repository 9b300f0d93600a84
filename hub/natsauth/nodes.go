package natsauth

import (
	"context"

	"github.com/pullgate/pullgate/hub/store"
)

// Nodes is what the authorizer reads from the store to decide a
// connection: the node identity (and its secret hash) and its cluster, or
// the cluster's join token for an enrolment. *store.SQL implements it.
type Nodes interface {
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
	ClusterByID(ctx context.Context, id string) (store.Cluster, error)
	// ClusterJoinHash returns the hash of the cluster's join token, or
	// store.ErrJoinTokenSpent when it has no enrolments left or expired.
	ClusterJoinHash(ctx context.Context, id string) ([]byte, error)
}

var _ Nodes = (*store.SQL)(nil)
