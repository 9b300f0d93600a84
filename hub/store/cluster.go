package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const clusterCols = `id, name, workspace_id, sa_jwks, sa_issuer, sa_audience, created_at, ` +
	`sa_jwks_proposed, sa_issuer_proposed, sa_proposed_by, sa_proposed_at, join_uses_left, join_expires_at, ` +
	`akash_provider, akash_controller`

func scanCluster(r rowScanner) (Cluster, error) {
	var c Cluster
	var jwks, proposed string
	var created, proposedAt, expires int64
	err := r.Scan(&c.ID, &c.Name, &c.WorkspaceID, &jwks, &c.SAIssuer, &c.SAAudience, &created,
		&proposed, &c.Proposal.Issuer, &c.Proposal.NodeID, &proposedAt, &c.JoinUsesLeft, &expires,
		&c.AkashProvider, &c.AkashController)
	if jwks != "" {
		c.SAJWKS = []byte(jwks)
	}
	if proposed != "" {
		c.Proposal.JWKS = []byte(proposed)
		c.Proposal.At = fromNanos(proposedAt)
	}
	if expires != 0 {
		c.JoinExpiresAt = fromNanos(expires)
	}
	c.CreatedAt = fromNanos(created)
	return c, err
}

func clusterNotFound(name string) error {
	return fmt.Errorf("cluster %q: %w", name, ErrNotFound)
}

// CreateCluster creates a cluster whose join token has hash joinHash
// (reusable until RotateJoinToken replaces it). Cluster names are global;
// c.ID, c.CreatedAt and the join limits are set by the store, and an empty
// SAAudience is "pullgate".
func (s *SQL) CreateCluster(ctx context.Context, c Cluster, joinHash []byte) (Cluster, error) {
	if err := checkName("cluster", c.Name); err != nil {
		return Cluster{}, err
	}
	if len(joinHash) == 0 {
		return Cluster{}, fmt.Errorf("%w: empty join token hash", ErrInvalid)
	}
	if c.SAAudience == "" {
		c.SAAudience = "pullgate"
	}
	if err := checkClusterAkash(c); err != nil {
		return Cluster{}, err
	}
	c.ID = newID("cl_")
	c.CreatedAt = now()
	c.Proposal = JWKSProposal{}
	c.JoinUsesLeft, c.JoinExpiresAt = -1, time.Time{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if c.WorkspaceID != "" {
			// Locked: a workspace deleted meanwhile (DeleteWorkspace locks
			// it too) would leave the cluster an orphan.
			var id string
			err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM workspaces WHERE id = ?`+s.forUpdate()), c.WorkspaceID).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: cluster %q: workspace id %q does not exist", ErrInvalid, c.Name, c.WorkspaceID)
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO clusters (id, name, workspace_id, sa_jwks, sa_issuer, sa_audience, created_at, join_hash,
		akash_provider, akash_controller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.Name, c.WorkspaceID, string(c.SAJWKS), c.SAIssuer, c.SAAudience, toNanos(c.CreatedAt), joinHash,
			c.AkashProvider, c.AkashController)
		if isUniqueViolation(err) {
			return fmt.Errorf("cluster %q: %w", c.Name, ErrConflict)
		}
		return err
	})
	if err != nil {
		return Cluster{}, wrap(err, "create cluster %q", c.Name)
	}
	return c, nil
}

// GetCluster returns the named cluster.
func (s *SQL) GetCluster(ctx context.Context, name string) (Cluster, error) {
	c, err := scanCluster(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, clusterNotFound(name)
	}
	return c, wrap(err, "get cluster %q", name)
}

// ClusterByID returns the cluster with the given ID.
func (s *SQL) ClusterByID(ctx context.Context, id string) (Cluster, error) {
	c, err := scanCluster(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	return c, wrap(err, "get cluster %q", id)
}

// ListClusters returns all clusters ordered by name.
func (s *SQL) ListClusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err(), "list clusters")
}

// DeleteCluster deletes a cluster and its nodes. While installs are
// bound to it, it refuses with a *ClusterInUseError unless force is set;
// then it unbinds them (bumping their generation, so tokens minted for the
// cluster stop working) and returns them.
func (s *SQL) DeleteCluster(ctx context.Context, name string, force bool) ([]Install, error) {
	var unbound []Install
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := scanCluster(tx.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE name = ?`+s.forUpdate()), name))
		if errors.Is(err, sql.ErrNoRows) {
			return clusterNotFound(name)
		}
		if err != nil {
			return err
		}
		// Installs bound by cluster_id only: Akash installs' lease copies
		// are not bound to the cluster and do not keep it in use.
		bound, err := s.boundInstalls(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		if len(bound) > 0 && !force {
			e := &ClusterInUseError{Cluster: name}
			for _, in := range bound {
				var ws string
				if err := tx.QueryRowContext(ctx, s.q(`SELECT name FROM workspaces WHERE id = ?`), in.WorkspaceID).Scan(&ws); err != nil {
					return err
				}
				e.Installs = append(e.Installs, ws+"/"+in.Name)
			}
			return e
		}
		t := now()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE installs SET cluster_id = NULL, generation = generation + 1, updated_at = ? WHERE cluster_id = ?`),
			toNanos(t), c.ID); err != nil {
			return err
		}
		for _, in := range bound {
			in.Cluster, in.ClusterID, in.Generation, in.UpdatedAt = "", "", in.Generation+1, t
			unbound = append(unbound, in)
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM clusters WHERE id = ?`), c.ID)
		return err
	})
	if err != nil {
		return nil, wrap(err, "delete cluster %q", name)
	}
	return unbound, nil
}

// InstallsByCluster lists the installs a cluster (by id) serves: those
// bound to it, less any bound to a lease namespace of another workspace's
// Akash account (a lease namespace is served only by its owner's
// installs), plus, per lease namespace of the cluster, a copy of each
// matching Akash install of the owner's workspace bound to that namespace
// (Install.Lease set; same ID, so revocation works as for any install).
func (s *SQL) InstallsByCluster(ctx context.Context, clusterID string) ([]Install, error) {
	out, err := s.servedInstalls(ctx, s.rdb, clusterID)
	if err != nil {
		return nil, wrap(err, "list installs of cluster %q", clusterID)
	}
	copies, err := s.leaseCopies(ctx, s.rdb, clusterID)
	if err != nil {
		return nil, wrap(err, "list installs of cluster %q", clusterID)
	}
	return append(out, copies...), nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// boundInstalls lists every install whose cluster_id is the cluster.
func (s *SQL) boundInstalls(ctx context.Context, q queryer, clusterID string) ([]Install, error) {
	return s.queryInstalls(ctx, q, `SELECT `+installSelect("i")+` FROM installs i WHERE i.cluster_id = ? ORDER BY i.workspace_id, i.name`, clusterID)
}

// servedInstalls lists the installs bound to the cluster that it serves:
// not those bound to a namespace that is a lease namespace of the cluster
// unless the lease's owner has an account owning the install's workspace
// (pre-squatting a tenant's namespace gets nothing).
func (s *SQL) servedInstalls(ctx context.Context, q queryer, clusterID string) ([]Install, error) {
	return s.queryInstalls(ctx, q, `SELECT `+installSelect("i")+` FROM installs i WHERE i.cluster_id = ?
		AND NOT EXISTS (SELECT 1 FROM akash_leases l WHERE l.cluster_id = i.cluster_id AND l.namespace = i.namespace
			AND NOT EXISTS (SELECT 1 FROM akash_accounts a WHERE a.address = l.owner AND a.workspace_id = i.workspace_id))
		ORDER BY i.workspace_id, i.name`, clusterID)
}

func (s *SQL) queryInstalls(ctx context.Context, q queryer, query string, args ...any) ([]Install, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// bindCluster resolves the cluster an install being created in workspace
// wsID names, in the creating transaction (the cluster row is locked, so
// two workspaces racing for one namespace are serialised). It refuses a
// cluster that does not exist, another workspace's single-workspace
// cluster, a shared cluster without a namespace, and a namespace of a
// shared cluster that another workspace's installs already use: pods of
// one namespace must never be matched to two tenants. The refusal names
// neither the other workspace nor its installs.
func (s *SQL) bindCluster(ctx context.Context, tx *sql.Tx, wsID, cluster, namespace string) (string, error) {
	var id, owner string
	err := tx.QueryRowContext(ctx, s.q(`SELECT id, workspace_id FROM clusters WHERE name = ?`+s.forUpdate()), cluster).Scan(&id, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: cluster %q does not exist", ErrInvalid, cluster)
	}
	if err != nil {
		return "", err
	}
	switch {
	case owner != "" && owner != wsID:
		return "", fmt.Errorf("%w: cluster %q belongs to another workspace", ErrInvalid, cluster)
	case owner != "":
		return id, nil
	case namespace == "":
		return "", fmt.Errorf("%w: cluster %q is shared: the install needs a namespace", ErrInvalid, cluster)
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM installs WHERE cluster_id = ? AND namespace = ? AND workspace_id <> ?`),
		id, namespace, wsID).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return "", fmt.Errorf("%w: namespace %q on shared cluster %q is taken by another workspace", ErrConflict, namespace, cluster)
	}
	return id, nil
}

// applyBinding applies u's cluster, namespace and service account to in
// and reports whether the binding changed. A new binding is checked as on
// create (bindCluster), in the updating transaction.
func (s *SQL) applyBinding(ctx context.Context, tx *sql.Tx, wsID string, in *Install, u InstallUpdate) (bool, error) {
	if u.Cluster == nil && u.Namespace == nil && u.ServiceAccount == nil {
		return false, nil
	}
	old := *in
	if u.Cluster != nil {
		in.Cluster = *u.Cluster
	}
	if u.Namespace != nil {
		in.Namespace = *u.Namespace
	}
	if u.ServiceAccount != nil {
		in.ServiceAccount = *u.ServiceAccount
	}
	if in.ServiceAccount != "" && in.Namespace == "" && in.Akash == "" {
		return false, fmt.Errorf("%w: install %q: a service account needs a namespace", ErrInvalid, in.Name)
	}
	if in.Cluster == old.Cluster && in.Namespace == old.Namespace && in.ServiceAccount == old.ServiceAccount {
		return false, nil
	}
	in.ClusterID = ""
	if in.Cluster != "" {
		id, err := s.bindCluster(ctx, tx, wsID, in.Cluster, in.Namespace)
		if err != nil {
			return false, err
		}
		in.ClusterID = id
	}
	return true, nil
}

// nullable stores an empty id as NULL (a foreign key column).
func nullable(id string) any {
	if id == "" {
		return nil
	}
	return id
}

const nodeCols = `id, cluster_id, name, revoked, created_at, revoked_at, agent_version, last_seen_at`

func scanNode(r rowScanner, extra ...any) (Node, error) {
	var n Node
	var created, revoked, seen int64
	dest := append([]any{&n.ID, &n.ClusterID, &n.Name, &n.Revoked, &created, &revoked, &n.AgentVersion, &seen}, extra...)
	err := r.Scan(dest...)
	n.CreatedAt = fromNanos(created)
	if revoked != 0 {
		n.RevokedAt = fromNanos(revoked)
	}
	if seen != 0 {
		n.LastSeenAt = fromNanos(seen)
	}
	return n, err
}

// CreateNode adds a node without taking a join-token use (EnrolNode does).
func (s *SQL) CreateNode(ctx context.Context, clusterID, name string, secretHash []byte) (Node, error) {
	n, err := newNode(clusterID, name, secretHash)
	if err != nil {
		return Node{}, err
	}
	if err := s.insertNode(ctx, s.db, n, secretHash); err != nil {
		return Node{}, fmt.Errorf("create node %q in cluster %q: %w", name, clusterID, err)
	}
	return n, nil
}

// newNode checks a new node's name and secret hash and makes its row.
func newNode(clusterID, name string, secretHash []byte) (Node, error) {
	if err := checkName("node", name); err != nil {
		return Node{}, err
	}
	if len(secretHash) == 0 {
		return Node{}, fmt.Errorf("%w: empty node secret hash", ErrInvalid)
	}
	return Node{ID: newID("node_"), ClusterID: clusterID, Name: name, CreatedAt: now()}, nil
}

// insertNode writes a node row, in a transaction or not.
func (s *SQL) insertNode(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, n Node, secretHash []byte) error {
	_, err := ex.ExecContext(ctx, s.q(`INSERT INTO nodes (`+nodeCols+`, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		n.ID, n.ClusterID, n.Name, false, toNanos(n.CreatedAt), 0, "", 0, secretHash)
	return err
}

// NodeByID returns the node and its secret hash.
func (s *SQL) NodeByID(ctx context.Context, id string) (Node, []byte, error) {
	var hash []byte
	n, err := scanNode(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+nodeCols+`, secret_hash FROM nodes WHERE id = ?`), id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, nil, fmt.Errorf("node %q: %w", id, ErrNotFound)
	}
	return n, hash, wrap(err, "get node %q", id)
}

// ListNodes returns the named cluster's nodes, oldest first.
func (s *SQL) ListNodes(ctx context.Context, cluster string) ([]Node, error) {
	c, err := s.GetCluster(ctx, cluster)
	if err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+nodeCols+` FROM nodes WHERE cluster_id = ? ORDER BY created_at, id`), c.ID)
	if err != nil {
		return nil, fmt.Errorf("list nodes of cluster %q: %w", cluster, err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("list nodes of cluster %q: %w", cluster, err)
		}
		out = append(out, n)
	}
	return out, wrap(rows.Err(), "list nodes of cluster %q", cluster)
}

// RevokeNode revokes a node of the cluster, named by id or by name
// (a name must be unambiguous).
func (s *SQL) RevokeNode(ctx context.Context, cluster, node string) (Node, error) {
	var out Node
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := scanCluster(tx.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE name = ?`), cluster))
		if errors.Is(err, sql.ErrNoRows) {
			return clusterNotFound(cluster)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+nodeCols+` FROM nodes WHERE cluster_id = ? AND (id = ? OR name = ?)`), c.ID, node, node)
		if err != nil {
			return err
		}
		var found []Node
		for rows.Next() {
			n, err := scanNode(rows)
			if err != nil {
				rows.Close()
				return err
			}
			found = append(found, n)
		}
		rows.Close()
		switch {
		case len(found) == 0:
			return fmt.Errorf("node %q in cluster %q: %w", node, cluster, ErrNotFound)
		case len(found) > 1:
			return fmt.Errorf("%w: node name %q is used by %d nodes of cluster %q: give the node id", ErrInvalid, node, len(found), cluster)
		}
		out = found[0]
		if out.Revoked {
			return nil
		}
		out.Revoked, out.RevokedAt = true, now()
		_, err = tx.ExecContext(ctx, s.q(`UPDATE nodes SET revoked = ?, revoked_at = ? WHERE id = ?`), true, toNanos(out.RevokedAt), out.ID)
		return err
	})
	return out, wrap(err, "revoke node %q of cluster %q", node, cluster)
}
