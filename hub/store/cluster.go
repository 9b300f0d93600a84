package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const clusterCols = `id, name, workspace_id, sa_jwks, sa_issuer, sa_audience, created_at`

func scanCluster(r rowScanner) (Cluster, error) {
	var c Cluster
	var jwks string
	var created int64
	err := r.Scan(&c.ID, &c.Name, &c.WorkspaceID, &jwks, &c.SAIssuer, &c.SAAudience, &created)
	if jwks != "" {
		c.SAJWKS = []byte(jwks)
	}
	c.CreatedAt = fromNanos(created)
	return c, err
}

func clusterNotFound(name string) error {
	return fmt.Errorf("cluster %q: %w", name, ErrNotFound)
}

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
	c.ID = newID("cl_")
	c.CreatedAt = now()
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO clusters (`+clusterCols+`, join_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.Name, c.WorkspaceID, string(c.SAJWKS), c.SAIssuer, c.SAAudience, toNanos(c.CreatedAt), joinHash)
	if isUniqueViolation(err) {
		return Cluster{}, fmt.Errorf("cluster %q: %w", c.Name, ErrConflict)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("create cluster %q: %w", c.Name, err)
	}
	return c, nil
}

func (s *SQL) GetCluster(ctx context.Context, name string) (Cluster, error) {
	c, err := scanCluster(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, clusterNotFound(name)
	}
	return c, wrap(err, "get cluster %q", name)
}

func (s *SQL) ClusterByID(ctx context.Context, id string) (Cluster, error) {
	c, err := scanCluster(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	return c, wrap(err, "get cluster %q", id)
}

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

func (s *SQL) DeleteCluster(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM clusters WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete cluster %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return clusterNotFound(name)
	}
	return nil
}

func (s *SQL) ClusterJoinHash(ctx context.Context, id string) ([]byte, error) {
	var h []byte
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT join_hash FROM clusters WHERE id = ?`), id).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	return h, wrap(err, "read join token hash of cluster %q", id)
}

func (s *SQL) RotateJoinToken(ctx context.Context, name string, joinHash []byte) error {
	if len(joinHash) == 0 {
		return fmt.Errorf("%w: empty join token hash", ErrInvalid)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE clusters SET join_hash = ? WHERE name = ?`), joinHash, name)
	if err != nil {
		return fmt.Errorf("rotate join token of cluster %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return clusterNotFound(name)
	}
	return nil
}

func (s *SQL) PinClusterJWKS(ctx context.Context, id string, jwks []byte) (bool, error) {
	if len(jwks) == 0 {
		return false, fmt.Errorf("%w: empty JWKS", ErrInvalid)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE clusters SET sa_jwks = ? WHERE id = ? AND sa_jwks = ''`), string(jwks), id)
	if err != nil {
		return false, fmt.Errorf("pin service-account keys of cluster %q: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *SQL) InstallsByCluster(ctx context.Context, cluster string) ([]Install, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+installCols+` FROM installs WHERE cluster = ? ORDER BY workspace_id, name`), cluster)
	if err != nil {
		return nil, fmt.Errorf("list installs of cluster %q: %w", cluster, err)
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, fmt.Errorf("list installs of cluster %q: %w", cluster, err)
		}
		out = append(out, in)
	}
	return out, wrap(rows.Err(), "list installs of cluster %q", cluster)
}

const nodeCols = `id, cluster_id, name, revoked, created_at, revoked_at`

func scanNode(r rowScanner, extra ...any) (Node, error) {
	var n Node
	var created, revoked int64
	dest := append([]any{&n.ID, &n.ClusterID, &n.Name, &n.Revoked, &created, &revoked}, extra...)
	err := r.Scan(dest...)
	n.CreatedAt = fromNanos(created)
	if revoked != 0 {
		n.RevokedAt = fromNanos(revoked)
	}
	return n, err
}

func (s *SQL) CreateNode(ctx context.Context, clusterID, name string, secretHash []byte) (Node, error) {
	if err := checkName("node", name); err != nil {
		return Node{}, err
	}
	if len(secretHash) == 0 {
		return Node{}, fmt.Errorf("%w: empty node secret hash", ErrInvalid)
	}
	n := Node{ID: newID("node_"), ClusterID: clusterID, Name: name, CreatedAt: now()}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO nodes (`+nodeCols+`, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		n.ID, n.ClusterID, n.Name, false, toNanos(n.CreatedAt), 0, secretHash)
	if err != nil {
		return Node{}, fmt.Errorf("create node %q in cluster %q: %w", name, clusterID, err)
	}
	return n, nil
}

func (s *SQL) NodeByID(ctx context.Context, id string) (Node, []byte, error) {
	var hash []byte
	n, err := scanNode(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+nodeCols+`, secret_hash FROM nodes WHERE id = ?`), id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, nil, fmt.Errorf("node %q: %w", id, ErrNotFound)
	}
	return n, hash, wrap(err, "get node %q", id)
}

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
