package store

// auditWhere turns q's filters (all but Limit and Desc) into WHERE terms
// and their arguments, shared by the event query and the statistics.
func auditWhere(q AuditQuery) ([]string, []any) {
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("workspace", q.Workspace)
	if term, targs, ok := auditScope(q); ok {
		where = append(where, term)
		args = append(args, targs...)
	}
	eq("install", q.Install)
	eq("repository", q.Repository)
	eq("upstream", q.Upstream)
	eq("node", q.Node)
	if !q.Since.IsZero() {
		where = append(where, "ts >= ?")
		args = append(args, toNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "ts < ?")
		args = append(args, toNanos(q.Until))
	}
	if q.AfterID > 0 {
		where = append(where, "id > ?")
		args = append(args, q.AfterID)
	}
	if q.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, q.BeforeID)
	}
	if q.StatusMin > 0 {
		where = append(where, "status >= ?")
		args = append(args, q.StatusMin)
	}
	if q.StatusMax > 0 {
		where = append(where, "status <= ?")
		args = append(args, q.StatusMax)
	}
	if q.Refused {
		where = append(where, "reason <> ''")
	}
	return where, args
}
