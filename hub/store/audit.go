package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Audit query limits.
const (
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 10000
)

const auditCols = `id, ts, workspace, install, cluster, node, client_addr, upstream, repository, ref, kind, method, bytes, status, duration_ns, reason, event_count, cache`

// AppendAudit stores events in one transaction. IDs are assigned by the
// store (e.ID is ignored); a zero Time is set to now.
func (s *SQL) AppendAudit(ctx context.Context, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q(`INSERT INTO audit_events (`+strings.TrimPrefix(auditCols, "id, ")+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer st.Close()
		t0 := now()
		for _, e := range events {
			ts := e.Time
			if ts.IsZero() {
				ts = t0
			}
			count := max(e.Count, 1)
			if _, err := st.ExecContext(ctx, toNanos(ts), e.Workspace, e.Install, e.Cluster, e.Node, e.ClientAddr,
				e.Upstream, e.Repository, e.Reference, e.Kind, e.Method, e.Bytes, e.Status, int64(e.Duration), e.Reason, count, e.Cache); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d audit events: %w", len(events), err)
	}
	return nil
}

// QueryAudit returns events matching q in ID order. Limit defaults to
// DefaultAuditLimit and is capped at MaxAuditLimit.
func (s *SQL) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var where []string
	var args []any
	if q.Workspace != "" {
		where = append(where, "workspace = ?")
		args = append(args, q.Workspace)
	}
	if q.Workspaces != nil {
		if len(q.Workspaces) == 0 {
			return nil, nil
		}
		where = append(where, "workspace IN (?"+strings.Repeat(", ?", len(q.Workspaces)-1)+")")
		for _, w := range q.Workspaces {
			args = append(args, w)
		}
	}
	if q.Install != "" {
		where = append(where, "install = ?")
		args = append(args, q.Install)
	}
	if !q.Since.IsZero() {
		where = append(where, "ts >= ?")
		args = append(args, toNanos(q.Since))
	}
	if q.AfterID > 0 {
		where = append(where, "id > ?")
		args = append(args, q.AfterID)
	}
	if q.Refused {
		where = append(where, "reason <> ''")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	query := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit)

	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var ts, dur int64
		if err := rows.Scan(&e.ID, &ts, &e.Workspace, &e.Install, &e.Cluster, &e.Node, &e.ClientAddr,
			&e.Upstream, &e.Repository, &e.Reference, &e.Kind, &e.Method, &e.Bytes, &e.Status, &dur, &e.Reason, &e.Count, &e.Cache); err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		e.Time = fromNanos(ts)
		e.Duration = time.Duration(dur)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

// DeleteAuditBefore deletes up to limit events older than before, oldest
// first. Callers loop in batches so that one retention pass never holds a
// long write transaction (SQLite has one writer).
func (s *SQL) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete audit events: %w: limit %d", ErrInvalid, limit)
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE ts < ? ORDER BY ts LIMIT ?)`),
		toNanos(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	return n, nil
}
