package store

import "strings"

// auditScope is the WHERE term of q.Workspaces (ok false: no term). A
// workspace named in q.WorkspaceSince keeps only its events from that
// time on: audit events name their workspace, so those older than the
// workspace are a deleted namesake's and must not reach its members. An
// empty non-nil Workspaces matches nothing.
func auditScope(q AuditQuery) (term string, args []any, ok bool) {
	if q.Workspaces == nil {
		return "", nil, false
	}
	if len(q.Workspaces) == 0 {
		return "1 = 0", nil, true
	}
	terms := make([]string, 0, len(q.Workspaces))
	for _, w := range q.Workspaces {
		since, has := q.WorkspaceSince[w]
		if !has {
			terms = append(terms, "workspace = ?")
			args = append(args, w)
			continue
		}
		terms = append(terms, "(workspace = ? AND ts >= ?)")
		args = append(args, w, toNanos(since))
	}
	return "(" + strings.Join(terms, " OR ") + ")", args, true
}
