package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Role is a user's role in one workspace. Each role includes the ones
// below it: owner > operator > viewer.
type Role string

// The roles, lowest first.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleOwner    Role = "owner"
)

// Rank orders roles: 0 for an unknown role, then viewer, operator, owner.
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Rank() > 0 {
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q: want owner, operator or viewer", ErrInvalid, s)
}

// User is a person or automation that signs in with API tokens and is a
// member of workspaces. Users have no password: they authenticate with
// tokens (and, later, an external identity provider).
type User struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Membership is a user's role in a workspace.
type Membership struct {
	UserID      string
	User        string // user name
	WorkspaceID string
	Workspace   string // workspace name
	Role        Role
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ErrLastOwner refuses a change that would leave a workspace that has
// owners without one. It wraps ErrConflict.
var ErrLastOwner = fmt.Errorf("the workspace's last owner cannot be removed or demoted: make another member owner first: %w", ErrConflict)

func userNotFound(name string) error { return fmt.Errorf("user %q: %w", name, ErrNotFound) }

func memberNotFound(ws, user string) error {
	return fmt.Errorf("member %q of workspace %q: %w", user, ws, ErrNotFound)
}

// GetUser returns the named user.
func (s *SQL) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, name, created_at FROM users WHERE name = ?`), name).Scan(&u.ID, &u.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, userNotFound(name)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// AddMember makes user a member of workspace with role, creating the user
// when it does not exist yet. A user that is already a member is a
// conflict (UpdateMember changes the role).
func (s *SQL) AddMember(ctx context.Context, workspace, user string, role Role) (Membership, error) {
	if err := checkName("user", user); err != nil {
		return Membership{}, err
	}
	if role.Rank() == 0 {
		return Membership{}, fmt.Errorf("%w: role %q: want owner, operator or viewer", ErrInvalid, role)
	}
	m := Membership{User: user, Workspace: workspace, Role: role, CreatedAt: now()}
	m.UpdatedAt = m.CreatedAt
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		wsID, err := s.workspaceID(ctx, tx, workspace)
		if err != nil {
			return err
		}
		m.WorkspaceID = wsID
		err = tx.QueryRowContext(ctx, s.q(`SELECT id FROM users WHERE name = ?`), user).Scan(&m.UserID)
		if errors.Is(err, sql.ErrNoRows) {
			m.UserID = newID("usr_")
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`), m.UserID, user, toNanos(m.CreatedAt))
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO memberships (user_id, workspace_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`),
			m.UserID, wsID, string(role), toNanos(m.CreatedAt), toNanos(m.UpdatedAt))
		if isUniqueViolation(err) {
			return fmt.Errorf("user %q is already a member of workspace %q (change the role with member update): %w", user, workspace, ErrConflict)
		}
		return err
	})
	if err != nil {
		return Membership{}, wrap(err, "add member %q to workspace %q", user, workspace)
	}
	return m, nil
}

const membershipSelect = `SELECT m.user_id, u.name, m.workspace_id, w.name, m.role, m.created_at, m.updated_at
	FROM memberships m JOIN users u ON u.id = m.user_id JOIN workspaces w ON w.id = m.workspace_id`

func (s *SQL) queryMemberships(ctx context.Context, q queryer, query string, args ...any) ([]Membership, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		var role string
		var created, updated int64
		if err := rows.Scan(&m.UserID, &m.User, &m.WorkspaceID, &m.Workspace, &role, &created, &updated); err != nil {
			return nil, err
		}
		m.Role, m.CreatedAt, m.UpdatedAt = Role(role), fromNanos(created), fromNanos(updated)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListMembers returns a workspace's members ordered by user name.
func (s *SQL) ListMembers(ctx context.Context, workspace string) ([]Membership, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, err
	}
	ms, err := s.queryMemberships(ctx, s.rdb, membershipSelect+` WHERE m.workspace_id = ? ORDER BY u.name`, wsID)
	if err != nil {
		return nil, fmt.Errorf("list members of workspace %q: %w", workspace, err)
	}
	return ms, nil
}

// MembershipsOf returns the workspaces a user is a member of, ordered by
// workspace name.
func (s *SQL) MembershipsOf(ctx context.Context, userID string) ([]Membership, error) {
	ms, err := s.queryMemberships(ctx, s.rdb, membershipSelect+` WHERE m.user_id = ? ORDER BY w.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("list memberships of user %s: %w", userID, err)
	}
	return ms, nil
}

// UpdateMember changes a member's role. With keepOwner set it refuses
// (ErrLastOwner) to demote the workspace's last owner.
func (s *SQL) UpdateMember(ctx context.Context, workspace, user string, role Role, keepOwner bool) (Membership, error) {
	if role.Rank() == 0 {
		return Membership{}, fmt.Errorf("%w: role %q: want owner, operator or viewer", ErrInvalid, role)
	}
	var out Membership
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := s.lockMember(ctx, tx, workspace, user)
		if err != nil {
			return err
		}
		if keepOwner && m.Role == RoleOwner && role != RoleOwner {
			if err := s.checkOtherOwner(ctx, tx, m); err != nil {
				return err
			}
		}
		m.Role, m.UpdatedAt = role, now()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE memberships SET role = ?, updated_at = ? WHERE user_id = ? AND workspace_id = ?`),
			string(role), toNanos(m.UpdatedAt), m.UserID, m.WorkspaceID); err != nil {
			return err
		}
		out = m
		return nil
	})
	if err != nil {
		return Membership{}, wrap(err, "update member %q of workspace %q", user, workspace)
	}
	return out, nil
}

// RemoveMember ends a membership (the user and its tokens stay). With
// keepOwner set it refuses (ErrLastOwner) to remove the last owner.
func (s *SQL) RemoveMember(ctx context.Context, workspace, user string, keepOwner bool) (Membership, error) {
	var out Membership
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := s.lockMember(ctx, tx, workspace, user)
		if err != nil {
			return err
		}
		if keepOwner && m.Role == RoleOwner {
			if err := s.checkOtherOwner(ctx, tx, m); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM memberships WHERE user_id = ? AND workspace_id = ?`), m.UserID, m.WorkspaceID)
		out = m
		return err
	})
	if err != nil {
		return Membership{}, wrap(err, "remove member %q from workspace %q", user, workspace)
	}
	return out, nil
}

// lockMember reads (and on PostgreSQL locks) one membership in tx.
func (s *SQL) lockMember(ctx context.Context, tx *sql.Tx, workspace, user string) (Membership, error) {
	wsID, err := s.workspaceID(ctx, tx, workspace)
	if err != nil {
		return Membership{}, err
	}
	// Lock the workspace's memberships so that two owners demoting each
	// other at once cannot both pass the last-owner check.
	if _, err := tx.ExecContext(ctx, s.q(`SELECT workspace_id FROM memberships WHERE workspace_id = ?`+s.forUpdate()), wsID); err != nil {
		return Membership{}, err
	}
	ms, err := s.queryMemberships(ctx, tx, membershipSelect+` WHERE m.workspace_id = ? AND u.name = ?`, wsID, user)
	if err != nil {
		return Membership{}, err
	}
	if len(ms) == 0 {
		return Membership{}, memberNotFound(workspace, user)
	}
	return ms[0], nil
}

func (s *SQL) checkOtherOwner(ctx context.Context, tx *sql.Tx, m Membership) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM memberships WHERE workspace_id = ? AND role = ? AND user_id <> ?`),
		m.WorkspaceID, string(RoleOwner), m.UserID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrLastOwner
	}
	return nil
}

// DeleteUser deletes a user with its memberships, API tokens and console
// sessions.
func (s *SQL) DeleteUser(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM users WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	if n == 0 {
		return userNotFound(name)
	}
	return nil
}
