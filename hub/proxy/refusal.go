package proxy

import (
	"net/http"
	"time"

	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
)

// auditRefusal records a pull (or token request) refused for its token.
// Nothing of the token itself is recorded. For a token that did not
// verify, workspace and install are unknown and the event names only the
// reason, the client and what it asked for; the audit writer aggregates
// those (an anonymous flood must not fill the database).
func (p *Proxy) auditRefusal(r *http.Request, start time.Time, kind string, rt route, claims token.Claims, inst store.Install, aerr *apiError) {
	if p.audit == nil || aerr.refusal == "" {
		return
	}
	ev := store.AuditEvent{
		Time: start.UTC(), ClientAddr: clientAddr(r), Upstream: rt.repo.Host, Repository: rt.repo.Path, Reference: rt.ref,
		Kind: kind, Method: metrics.Method(r.Method), Status: aerr.status, Reason: aerr.refusal, Duration: p.now().Sub(start),
	}
	if claims.Install != "" {
		// An authentic token: its install is known even if the install is
		// gone (then by id).
		ev.Workspace = p.workspaceName(r.Context(), claims.Workspace)
		ev.Install, ev.Cluster, ev.Node = claims.Install, claims.Cluster, claims.Node
		if inst.Name == "" {
			// Expired tokens are refused before the install is read.
			if in, err := p.store.InstallByID(r.Context(), claims.Install); err == nil && in.WorkspaceID == claims.Workspace {
				inst = in
			}
		}
		if inst.Name != "" {
			ev.Install = inst.Name
		}
	}
	p.audit.Record(ev)
}
