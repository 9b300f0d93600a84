package api

import (
	"net/http"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// scopeAudit limits an audit query (events, statistics, export) to what
// the caller may read: a member reads the pull audit of its own workspaces
// only, and another workspace answers as one that does not exist.
func scopeAudit(r *http.Request, q *store.AuditQuery) error {
	if p := principalFrom(r.Context()); !p.IsAdmin() {
		if q.Workspace != "" && p.Role(q.Workspace) == "" {
			return notFoundWorkspace(q.Workspace)
		}
		q.Workspaces = p.WorkspaceNames()
		// Audit events name their workspace: those from before the
		// workspace was created are of a deleted one of the same name.
		q.WorkspaceSince = map[string]time.Time{}
		for _, m := range p.Memberships {
			q.WorkspaceSince[m.Workspace] = m.WorkspaceCreatedAt
		}
	}
	return nil
}
