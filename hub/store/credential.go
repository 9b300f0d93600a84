package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

const credentialCols = `id, workspace_id, name, host, endpoint, kind, username, insecure, enabled, version, created_at, updated_at, allow_private_network, realm_hosts`

func scanCredential(r rowScanner) (Credential, error) {
	var c Credential
	var created, updated int64
	var realms string
	err := r.Scan(&c.ID, &c.WorkspaceID, &c.Name, &c.Host, &c.Endpoint, &c.Kind, &c.Username,
		&c.Insecure, &c.Enabled, &c.Version, &created, &updated, &c.AllowPrivateNetwork, &realms)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	c.RealmHosts = splitList(realms)
	return c, err
}

func credentialNotFound(workspace, name string) error {
	return fmt.Errorf("credential %q in workspace %q: %w", name, workspace, ErrNotFound)
}

// CreateCredential stores a credential's metadata and its sealed secret as
// version 1. c.ID, c.WorkspaceID, c.Version and the timestamps are set by
// the store; c.Enabled is stored as given.
func (s *SQL) CreateCredential(ctx context.Context, workspace string, c Credential, secret Sealed) (Credential, error) {
	if err := checkName("credential", c.Name); err != nil {
		return Credential{}, err
	}
	if c.Host == "" {
		return Credential{}, fmt.Errorf("%w: credential %q: host must not be empty", ErrInvalid, c.Name)
	}
	if c.Kind == "" {
		return Credential{}, fmt.Errorf("%w: credential %q: kind must not be empty", ErrInvalid, c.Name)
	}
	if len(secret) == 0 {
		return Credential{}, fmt.Errorf("%w: credential %q: secret must not be empty", ErrInvalid, c.Name)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		c.ID = newID("cred_")
		c.WorkspaceID = wsID
		c.Version = 1
		c.CreatedAt = now()
		c.UpdatedAt = c.CreatedAt
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.WorkspaceID, c.Name, c.Host, c.Endpoint, c.Kind, c.Username, c.Insecure, c.Enabled, c.Version,
			toNanos(c.CreatedAt), toNanos(c.UpdatedAt), c.AllowPrivateNetwork, strings.Join(c.RealmHosts, ","))
		if isUniqueViolation(err) {
			return fmt.Errorf("credential %q in workspace %q: %w", c.Name, workspace, ErrConflict)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO credential_secrets (credential_id, version, sealed, created_at) VALUES (?, ?, ?, ?)`),
			c.ID, c.Version, []byte(secret), toNanos(c.CreatedAt))
		return err
	})
	if err != nil {
		return Credential{}, wrap(err, "create credential %q in workspace %q", c.Name, workspace)
	}
	return c, nil
}

// GetCredential returns a credential's metadata.
func (s *SQL) GetCredential(ctx context.Context, workspace, name string) (Credential, error) {
	c, err := scanCredential(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+prefixCols("c.", credentialCols)+`
		FROM credentials c JOIN workspaces w ON w.id = c.workspace_id
		WHERE w.name = ? AND c.name = ?`), workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.workspaceID(ctx, s.rdb, workspace); err != nil {
			return Credential{}, wrap(err, "get credential %q in workspace %q", name, workspace)
		}
		return Credential{}, credentialNotFound(workspace, name)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("get credential %q in workspace %q: %w", name, workspace, err)
	}
	return c, nil
}

// ListCredentials returns the workspace's credentials ordered by name.
func (s *SQL) ListCredentials(ctx context.Context, workspace string) ([]Credential, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, wrap(err, "list credentials in workspace %q", workspace)
	}
	cs, err := s.CredentialsByWorkspaceID(ctx, wsID)
	if err != nil {
		return nil, fmt.Errorf("list credentials in workspace %q: %w", workspace, err)
	}
	return cs, nil
}

// CredentialsByWorkspaceID returns the workspace's credentials ordered by
// name; an unknown workspace ID yields an empty list.
func (s *SQL) CredentialsByWorkspaceID(ctx context.Context, workspaceID string) ([]Credential, error) {
	rows, err := s.stmtCredsByWSID.QueryContext(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("credentials of workspace %s: %w", workspaceID, err)
	}
	return out, nil
}

// UpdateCredential applies u. A non-nil Secret is stored as a new version
// (older versions are kept). UpdatedAt is always set.
func (s *SQL) UpdateCredential(ctx context.Context, workspace, name string, u CredentialUpdate) (Credential, error) {
	if u.Secret != nil && len(u.Secret) == 0 {
		return Credential{}, fmt.Errorf("%w: credential %q: secret must not be empty", ErrInvalid, name)
	}
	var c Credential
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		c, err = scanCredential(tx.QueryRowContext(ctx, s.q(`SELECT `+credentialCols+` FROM credentials WHERE workspace_id = ? AND name = ?`+s.forUpdate()), wsID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return credentialNotFound(workspace, name)
		}
		if err != nil {
			return err
		}
		if u.Kind != nil && *u.Kind != c.Kind {
			if u.Secret == nil {
				return fmt.Errorf("%w: credential %q: a new kind needs a new secret", ErrInvalid, name)
			}
			c.Kind = *u.Kind
		}
		if u.Username != nil {
			c.Username = *u.Username
		}
		if u.Endpoint != nil {
			c.Endpoint = *u.Endpoint
		}
		if u.Insecure != nil {
			c.Insecure = *u.Insecure
		}
		if u.Enabled != nil {
			c.Enabled = *u.Enabled
		}
		if u.AllowPrivateNetwork != nil {
			c.AllowPrivateNetwork = *u.AllowPrivateNetwork
		}
		if u.RealmHosts != nil {
			c.RealmHosts = *u.RealmHosts
		}
		c.UpdatedAt = now()
		if u.Secret != nil {
			c.Version++
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO credential_secrets (credential_id, version, sealed, created_at) VALUES (?, ?, ?, ?)`),
				c.ID, c.Version, []byte(u.Secret), toNanos(c.UpdatedAt)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE credentials SET kind = ?, username = ?, endpoint = ?, insecure = ?, enabled = ?, version = ?, updated_at = ?,
			allow_private_network = ?, realm_hosts = ? WHERE id = ?`),
			c.Kind, c.Username, c.Endpoint, c.Insecure, c.Enabled, c.Version, toNanos(c.UpdatedAt),
			c.AllowPrivateNetwork, strings.Join(c.RealmHosts, ","), c.ID)
		return err
	})
	if err != nil {
		return Credential{}, wrap(err, "update credential %q in workspace %q", name, workspace)
	}
	return c, nil
}

// DeleteCredential removes a credential and all its secret versions.
func (s *SQL) DeleteCredential(ctx context.Context, workspace, name string) error {
	err := s.deleteNamed(ctx, tableCredentials, workspace, name, credentialNotFound)
	return wrap(err, "delete credential %q in workspace %q", name, workspace)
}

// CredentialSecret returns the sealed secret of the given version.
func (s *SQL) CredentialSecret(ctx context.Context, credentialID string, version int) (Sealed, error) {
	var b []byte
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT sealed FROM credential_secrets WHERE credential_id = ? AND version = ?`), credentialID, version).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("credential %s secret version %d: %w", credentialID, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("credential %s secret version %d: %w", credentialID, version, err)
	}
	return Sealed(b), nil
}
