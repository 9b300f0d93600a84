package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// installCols are the installs table's columns as written; reads add the
// name of the bound cluster (installSelect).
const installCols = `id, workspace_id, name, cluster_id, namespace, service_account, repos, enabled, generation, created_at, updated_at, akash`

// installSelect is the select list of an install read through table alias
// a: its columns, then the name of the cluster it is bound to (empty when
// unbound).
func installSelect(a string) string {
	return prefixCols(a+".", installCols) + `, COALESCE((SELECT c.name FROM clusters c WHERE c.id = ` + a + `.cluster_id), '')`
}

// scanInstall reads an install row as installSelect lists it, then extra
// columns into extra.
func scanInstall(r rowScanner, extra ...any) (Install, error) {
	var in Install
	var repos string
	var clusterID sql.NullString
	var created, updated int64
	dest := append([]any{&in.ID, &in.WorkspaceID, &in.Name, &clusterID, &in.Namespace, &in.ServiceAccount,
		&repos, &in.Enabled, &in.Generation, &created, &updated, &in.Akash, &in.Cluster}, extra...)
	if err := r.Scan(dest...); err != nil {
		return Install{}, err
	}
	in.ClusterID = clusterID.String
	if err := json.Unmarshal([]byte(repos), &in.Repos); err != nil {
		return Install{}, fmt.Errorf("install %s: decode repos: %w", in.ID, err)
	}
	in.CreatedAt, in.UpdatedAt = fromNanos(created), fromNanos(updated)
	return in, nil
}

func encodeRepos(repos []string) (string, error) {
	b, err := json.Marshal(repos)
	return string(b), err
}

func installNotFound(workspace, name string) error {
	return fmt.Errorf("install %q in workspace %q: %w", name, workspace, ErrNotFound)
}

// CreateInstall creates an install with Generation 1. in.ID,
// in.WorkspaceID, in.Generation and the timestamps are set by the store.
func (s *SQL) CreateInstall(ctx context.Context, workspace string, in Install) (Install, error) {
	if err := checkName("install", in.Name); err != nil {
		return Install{}, err
	}
	if err := checkInstallAkash(in); err != nil {
		return Install{}, err
	}
	in.Lease = ""
	in.Repos = slices.Clone(in.Repos)
	repos, err := encodeRepos(in.Repos)
	if err != nil {
		return Install{}, fmt.Errorf("create install %q in workspace %q: %w", in.Name, workspace, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		in.ClusterID = ""
		if in.Cluster != "" {
			if in.ClusterID, err = s.bindCluster(ctx, tx, wsID, in.Cluster, in.Namespace); err != nil {
				return err
			}
		}
		in.ID = newID("inst_")
		in.WorkspaceID = wsID
		in.Generation = 1
		in.CreatedAt = now()
		in.UpdatedAt = in.CreatedAt
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO installs (`+installCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			in.ID, in.WorkspaceID, in.Name, nullable(in.ClusterID), in.Namespace, in.ServiceAccount, repos, in.Enabled,
			in.Generation, toNanos(in.CreatedAt), toNanos(in.UpdatedAt), in.Akash)
		if isUniqueViolation(err) {
			return fmt.Errorf("install %q in workspace %q: %w", in.Name, workspace, ErrConflict)
		}
		return err
	})
	if err != nil {
		return Install{}, wrap(err, "create install %q in workspace %q", in.Name, workspace)
	}
	return in, nil
}

// GetInstall returns the named install.
func (s *SQL) GetInstall(ctx context.Context, workspace, name string) (Install, error) {
	in, err := scanInstall(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+installSelect("i")+`
		FROM installs i JOIN workspaces w ON w.id = i.workspace_id
		WHERE w.name = ? AND i.name = ?`), workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.workspaceID(ctx, s.rdb, workspace); err != nil {
			return Install{}, wrap(err, "get install %q in workspace %q", name, workspace)
		}
		return Install{}, installNotFound(workspace, name)
	}
	if err != nil {
		return Install{}, fmt.Errorf("get install %q in workspace %q: %w", name, workspace, err)
	}
	return in, nil
}

// InstallByID returns the install with the given ID.
func (s *SQL) InstallByID(ctx context.Context, id string) (Install, error) {
	in, err := scanInstall(s.stmtInstallByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Install{}, fmt.Errorf("install %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Install{}, fmt.Errorf("install %s: %w", id, err)
	}
	return in, nil
}

// ListInstalls returns the workspace's installs ordered by name.
func (s *SQL) ListInstalls(ctx context.Context, workspace string) ([]Install, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, wrap(err, "list installs in workspace %q", workspace)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+installSelect("i")+` FROM installs i WHERE i.workspace_id = ? ORDER BY i.name`), wsID)
	if err != nil {
		return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installs in workspace %q: %w", workspace, err)
	}
	return out, nil
}

// UpdateInstall applies u. Generation is bumped (once) when the install
// goes from enabled to disabled or when its repo list changes; enabling
// does not bump it. UpdatedAt is always set.
func (s *SQL) UpdateInstall(ctx context.Context, workspace, name string, u InstallUpdate) (Install, error) {
	var in Install
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		in, err = scanInstall(tx.QueryRowContext(ctx, s.q(`SELECT `+installSelect("i")+` FROM installs i WHERE i.workspace_id = ? AND i.name = ?`+s.forUpdate()), wsID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return installNotFound(workspace, name)
		}
		if err != nil {
			return err
		}
		bump := false
		if u.Enabled != nil {
			if in.Enabled && !*u.Enabled {
				bump = true
			}
			in.Enabled = *u.Enabled
		}
		if u.Repos != nil {
			if !slices.Equal(in.Repos, *u.Repos) {
				bump = true
			}
			in.Repos = slices.Clone(*u.Repos)
		}
		if u.Akash != nil && *u.Akash != in.Akash {
			in.Akash = *u.Akash
			bump = true
		}
		rebind, err := s.applyBinding(ctx, tx, wsID, &in, u)
		if err != nil {
			return err
		}
		if err := checkInstallAkash(in); err != nil {
			return err
		}
		if bump || rebind {
			in.Generation++
		}
		in.UpdatedAt = now()
		repos, err := encodeRepos(in.Repos)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE installs SET repos = ?, enabled = ?, generation = ?, updated_at = ?,
			cluster_id = ?, namespace = ?, service_account = ?, akash = ? WHERE id = ?`),
			repos, in.Enabled, in.Generation, toNanos(in.UpdatedAt),
			nullable(in.ClusterID), in.Namespace, in.ServiceAccount, in.Akash, in.ID)
		return err
	})
	if err != nil {
		return Install{}, wrap(err, "update install %q in workspace %q", name, workspace)
	}
	return in, nil
}

// DeleteInstall removes an install.
func (s *SQL) DeleteInstall(ctx context.Context, workspace, name string) error {
	err := s.deleteNamed(ctx, tableInstalls, workspace, name, installNotFound)
	return wrap(err, "delete install %q in workspace %q", name, workspace)
}
