package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Activity is one operator action on the API (not a pull: AuditEvent):
// who did what to which object, in which workspace, when, from where, and
// how it ended. It never holds a secret.
type Activity struct {
	ID            int64
	Time          time.Time
	PrincipalKind string // "admin" or "user"
	Principal     string // "admin" or the user name
	TokenID       string // the API token or session used; empty for the admin token
	Action        string // "registry.create", "install.disable", ...
	TargetKind    string // "registry", "install", ...
	Target        string // the object's name (or id for tokens)
	Workspace     string // workspace name; empty for hub-wide actions
	WorkspaceID   string
	RemoteAddr    string
	Method        string
	Path          string
	Status        int
	Result        string // "ok", "refused" (access) or "failed"
}

// ActivityQuery selects activity. Zero fields do not filter.
type ActivityQuery struct {
	WorkspaceID string
	Since       time.Time
	AfterID     int64
	Limit       int // 0: DefaultAuditLimit; at most MaxAuditLimit
}

const activityCols = `id, ts, principal_kind, principal, token_id, action, target_kind, target, workspace, workspace_id, remote_addr, method, path, status, result`

// AppendActivity stores one activity row; a zero Time is set to now.
func (s *SQL) AppendActivity(ctx context.Context, a Activity) error {
	if a.Time.IsZero() {
		a.Time = now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO activity (`+strings.TrimPrefix(activityCols, "id, ")+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		toNanos(a.Time), a.PrincipalKind, a.Principal, a.TokenID, a.Action, a.TargetKind, a.Target, a.Workspace, a.WorkspaceID,
		a.RemoteAddr, a.Method, a.Path, a.Status, a.Result)
	if err != nil {
		return fmt.Errorf("append activity %s: %w", a.Action, err)
	}
	return nil
}

// QueryActivity returns activity matching q in ID order.
func (s *SQL) QueryActivity(ctx context.Context, q ActivityQuery) ([]Activity, error) {
	var where []string
	var args []any
	if q.WorkspaceID != "" {
		where = append(where, "workspace_id = ?")
		args = append(args, q.WorkspaceID)
	}
	if !q.Since.IsZero() {
		where = append(where, "ts >= ?")
		args = append(args, toNanos(q.Since))
	}
	if q.AfterID > 0 {
		where = append(where, "id > ?")
		args = append(args, q.AfterID)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	query := `SELECT ` + activityCols + ` FROM activity`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query activity: %w", err)
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		var a Activity
		var ts int64
		if err := rows.Scan(&a.ID, &ts, &a.PrincipalKind, &a.Principal, &a.TokenID, &a.Action, &a.TargetKind, &a.Target,
			&a.Workspace, &a.WorkspaceID, &a.RemoteAddr, &a.Method, &a.Path, &a.Status, &a.Result); err != nil {
			return nil, fmt.Errorf("query activity: %w", err)
		}
		a.Time = fromNanos(ts)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query activity: %w", err)
	}
	return out, nil
}
