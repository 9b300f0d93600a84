package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Audit statistics groupings (AuditStats).
const (
	AuditByInstall  = "install"
	AuditByUpstream = "upstream"
)

// MaxAuditStatsRows bounds what one statistics query returns.
const MaxAuditStatsRows = 50000

// AuditBucket is the traffic of one group (an install or an upstream
// host) in one time bucket.
type AuditBucket struct {
	Start time.Time
	Key   string
	// Requests counts every request (aggregated refusals by their
	// count); Pulls the manifest requests that were served with a status
	// below 400 (one per image pulled, at least); Refused the refused
	// requests; Bytes what was streamed to clients.
	Requests int64
	Pulls    int64
	Refused  int64
	Bytes    int64
}

// AuditStats sums the events q selects into buckets of the given width
// (aligned to the Unix epoch), per value of the by column (AuditByInstall
// or AuditByUpstream), oldest bucket first. q.Limit, AfterID, BeforeID and
// Desc do not apply.
func (s *SQL) AuditStats(ctx context.Context, q AuditQuery, by string, bucket time.Duration) ([]AuditBucket, error) {
	if by != AuditByInstall && by != AuditByUpstream {
		return nil, fmt.Errorf("audit statistics: %w: group by %q (want install or upstream)", ErrInvalid, by)
	}
	if bucket <= 0 {
		return nil, fmt.Errorf("audit statistics: %w: bucket %v", ErrInvalid, bucket)
	}
	q.AfterID, q.BeforeID = 0, 0
	where, args := auditWhere(q)
	// by is one of two constants: safe to put in the statement.
	query := `SELECT ts / ? AS b, ` + by + `,
		CAST(SUM(event_count) AS BIGINT),
		CAST(SUM(CASE WHEN kind = 'manifest' AND reason = '' AND status < 400 THEN event_count ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN reason <> '' THEN event_count ELSE 0 END) AS BIGINT),
		CAST(SUM(bytes) AS BIGINT)
		FROM audit_events`
	args = append([]any{int64(bucket)}, args...)
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` GROUP BY b, ` + by + ` ORDER BY b, ` + by + ` LIMIT ?`
	args = append(args, MaxAuditStatsRows)
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("audit statistics: %w", err)
	}
	defer rows.Close()
	var out []AuditBucket
	for rows.Next() {
		var b AuditBucket
		var n int64
		if err := rows.Scan(&n, &b.Key, &b.Requests, &b.Pulls, &b.Refused, &b.Bytes); err != nil {
			return nil, fmt.Errorf("audit statistics: %w", err)
		}
		b.Start = fromNanos(n * int64(bucket))
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit statistics: %w", err)
	}
	return out, nil
}
