package api

import (
	"context"
	"errors"

	"github.com/pullgate/pullgate/hub/store"
)

// auditNames resolves the node and cluster ids audit events carry (the
// token's claims, stable and unambiguous) to the names operators know,
// once per id per request. A node or cluster since deleted has no name.
type auditNames struct {
	st       auditNameStore
	nodes    map[string]string
	clusters map[string]string
}

// auditNameStore resolves node and cluster ids.
type auditNameStore interface {
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
	ClusterByID(ctx context.Context, id string) (store.Cluster, error)
}

func newAuditNames(st auditNameStore) *auditNames {
	return &auditNames{st: st, nodes: map[string]string{}, clusters: map[string]string{}}
}

func (a *auditNames) node(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if name, ok := a.nodes[id]; ok {
		return name, nil
	}
	n, _, err := a.st.NodeByID(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	a.nodes[id] = n.Name
	return n.Name, nil
}

func (a *auditNames) cluster(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if name, ok := a.clusters[id]; ok {
		return name, nil
	}
	c, err := a.st.ClusterByID(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	a.clusters[id] = c.Name
	return c.Name, nil
}

// name fills the view's node and cluster names.
func (a *auditNames) name(ctx context.Context, v *AuditEvent) error {
	var err error
	if v.NodeName, err = a.node(ctx, v.Node); err != nil {
		return err
	}
	v.ClusterName, err = a.cluster(ctx, v.Cluster)
	return err
}
