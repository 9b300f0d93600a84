package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

func workspaceNotFound(name string) error {
	return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
}

// workspaceID resolves a workspace name.
func (s *SQL) workspaceID(ctx context.Context, q queryRower, name string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, s.q(`SELECT id FROM workspaces WHERE name = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", workspaceNotFound(name)
	}
	return id, err
}

// CreateWorkspace creates a workspace.
func (s *SQL) CreateWorkspace(ctx context.Context, name string) (Workspace, error) {
	if err := checkName("workspace", name); err != nil {
		return Workspace{}, err
	}
	w := Workspace{ID: newID("ws_"), Name: name, CreatedAt: now()}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)`),
		w.ID, w.Name, toNanos(w.CreatedAt))
	if isUniqueViolation(err) {
		return Workspace{}, fmt.Errorf("workspace %q: %w", name, ErrConflict)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("create workspace %q: %w", name, err)
	}
	return w, nil
}

// GetWorkspace returns the named workspace.
func (s *SQL) GetWorkspace(ctx context.Context, name string) (Workspace, error) {
	return s.workspaceBy(ctx, "name", name)
}

// WorkspaceByID returns the workspace with the given ID.
func (s *SQL) WorkspaceByID(ctx context.Context, id string) (Workspace, error) {
	return s.workspaceBy(ctx, "id", id)
}

// workspaceBy reads one workspace by a unique column (name or id).
func (s *SQL) workspaceBy(ctx context.Context, col, v string) (Workspace, error) {
	var w Workspace
	var created int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, name, created_at FROM workspaces WHERE `+col+` = ?`), v).
		Scan(&w.ID, &w.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		if col == "id" {
			return Workspace{}, fmt.Errorf("workspace id %q: %w", v, ErrNotFound)
		}
		return Workspace{}, workspaceNotFound(v)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("get workspace %q: %w", v, err)
	}
	w.CreatedAt = fromNanos(created)
	return w, nil
}

// ListWorkspaces returns all workspaces ordered by name.
func (s *SQL) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, name, created_at FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	defer rows.Close()
	var out []Workspace
	for rows.Next() {
		var w Workspace
		var created int64
		if err := rows.Scan(&w.ID, &w.Name, &created); err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		w.CreatedAt = fromNanos(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return out, nil
}

// DeleteWorkspace removes the workspace with its credentials (and their
// secrets), its installs and its single-workspace clusters (with their
// nodes, join token and service-account keys), in one transaction, and
// returns what it removed. While the workspace has installs or clusters it
// refuses with a *WorkspaceInUseError unless force is set. Audit events
// are kept.
func (s *SQL) DeleteWorkspace(ctx context.Context, name string, force bool) (WorkspaceContents, error) {
	var out WorkspaceContents
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The row lock serialises this with CreateCluster, which checks
		// the workspace in its own transaction: no cluster is created for
		// a workspace being deleted.
		var wsID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM workspaces WHERE name = ?`+s.forUpdate()), name).Scan(&wsID)
		if errors.Is(err, sql.ErrNoRows) {
			return workspaceNotFound(name)
		}
		if err != nil {
			return err
		}
		if out, err = s.workspaceContents(ctx, tx, wsID); err != nil {
			return err
		}
		if (len(out.Installs) > 0 || len(out.Clusters) > 0) && !force {
			return &WorkspaceInUseError{Workspace: name, Contents: out}
		}
		// Installs first: they reference the clusters. Installs of other
		// workspaces are never bound to this workspace's clusters
		// (bindCluster). Nodes go with their clusters (ON DELETE CASCADE),
		// credentials and their secrets with the workspace.
		for _, q := range []string{`DELETE FROM installs WHERE workspace_id = ?`, `DELETE FROM clusters WHERE workspace_id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), wsID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM workspaces WHERE id = ?`), wsID)
		return err
	})
	if err != nil {
		return WorkspaceContents{}, wrap(err, "delete workspace %q", name)
	}
	return out, nil
}

// workspaceContents lists what a workspace owns, each list by name.
func (s *SQL) workspaceContents(ctx context.Context, tx *sql.Tx, wsID string) (WorkspaceContents, error) {
	var out WorkspaceContents
	names := func(query string) ([]string, error) {
		rows, err := tx.QueryContext(ctx, s.q(query), wsID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var ns []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			ns = append(ns, n)
		}
		return ns, rows.Err()
	}
	var err error
	if out.Installs, err = names(`SELECT name FROM installs WHERE workspace_id = ? ORDER BY name`); err != nil {
		return out, err
	}
	if out.Credentials, err = names(`SELECT name FROM credentials WHERE workspace_id = ? ORDER BY name`); err != nil {
		return out, err
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT c.name, (SELECT COUNT(*) FROM nodes n WHERE n.cluster_id = c.id)
		FROM clusters c WHERE c.workspace_id = ? ORDER BY c.name`), wsID)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var c WorkspaceCluster
		if err := rows.Scan(&c.Name, &c.Nodes); err != nil {
			return out, err
		}
		out.Clusters = append(out.Clusters, c)
	}
	return out, rows.Err()
}
