package tokensvc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// The hub calls these after a change is stored and before its API call
// returns, so agents purge while the operator's command completes. A push
// can be lost (an agent is disconnected, NATS restarts); agents resync on
// reconnect and periodically, and the proxy refuses revoked tokens on its
// own, so a lost push never makes a revoked token work.

// InstallChanged revokes tokens of an install (disabled, deleted, allow-list
// changed) on its cluster and on every cluster where its workspace has
// Akash lease namespaces: an Akash install has no cluster of its own but
// is served there, and one that just stopped being an Akash install was.
func (s *Service) InstallChanged(ctx context.Context, in store.Install) error {
	return s.publishInstall(ctx, in, wire.Revocation{Installs: []string{in.ID}})
}

// InstallAdded sends the install's clusters (as InstallChanged finds them)
// a notice that names nothing: no cached token is dropped, and agents that
// keep containerd mirrors resync to pick up the upstream hosts of a new or
// re-enabled install. (Sending InstallChanged instead would drop tokens
// fetched just after the change.)
func (s *Service) InstallAdded(ctx context.Context, in store.Install) error {
	return s.publishInstall(ctx, in, wire.Revocation{})
}

// AkashLeasesChanged tells a cluster that its lease namespaces changed
// with a notice that names nothing: agents resync, dropping installs no
// longer served there (and picking up the hosts of new ones).
func (s *Service) AkashLeasesChanged(ctx context.Context, c store.Cluster) error {
	return s.publish(c.ID, wire.Revocation{})
}

// publishInstall publishes r to the clusters that serve (or served) the
// install: its own, and those with lease namespaces of its workspace.
func (s *Service) publishInstall(ctx context.Context, in store.Install, r wire.Revocation) error {
	var ids []string
	if in.ClusterID != "" {
		if c, err := s.store.ClusterByID(ctx, in.ClusterID); err == nil {
			ids = append(ids, c.ID)
		} // no such cluster: nothing holds its tokens
	}
	leased, err := s.store.AkashLeaseClusters(ctx, in.WorkspaceID)
	if err != nil {
		return fmt.Errorf("push revocation of install %s: %w", in.Name, err)
	}
	for _, id := range leased {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if err := s.publish(id, r); err != nil {
			return err
		}
	}
	return nil
}

// CredentialsChanged revokes cached tokens of a workspace's installs (a
// credential was disabled, deleted or enabled).
func (s *Service) CredentialsChanged(ctx context.Context, workspaceID string) error {
	clusters, err := s.store.ListClusters(ctx)
	if err != nil {
		return fmt.Errorf("revoke workspace tokens: %w", err)
	}
	for _, c := range clusters {
		affected := c.WorkspaceID == workspaceID
		if !affected {
			installs, err := s.store.InstallsByCluster(ctx, c.ID)
			if err != nil {
				return fmt.Errorf("revoke workspace tokens: %w", err)
			}
			for _, in := range installs {
				affected = affected || in.WorkspaceID == workspaceID
			}
		}
		if affected {
			if err := s.publish(c.ID, wire.Revocation{Workspaces: []string{workspaceID}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// NodeRevoked tells a cluster that one of its nodes is revoked. A
// well-behaved agent drops everything; a compromised one is cut off by
// NATS and refused by the token service and the proxy anyway.
func (s *Service) NodeRevoked(ctx context.Context, c store.Cluster, n store.Node) error {
	return s.publish(c.ID, wire.Revocation{Nodes: []string{n.ID}})
}

// ClusterDeleted tells the cluster's agents to drop everything.
func (s *Service) ClusterDeleted(ctx context.Context, c store.Cluster) error {
	return s.publish(c.ID, wire.Revocation{Cluster: true})
}

func (s *Service) publish(clusterID string, r wire.Revocation) error {
	if s.nc == nil {
		return nil
	}
	r.Source, r.Seq, r.Time = s.source, s.seq.Add(1), s.now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.nc.Publish(wire.RevokeSubject(clusterID), b); err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	// Return once the server has it: the API call that caused it then
	// returns after the push is on its way to every agent.
	if err := s.nc.FlushTimeout(2 * time.Second); err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	return nil
}
