package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

func (s *server) queryAudit(w http.ResponseWriter, r *http.Request) error {
	q := store.AuditQuery{}
	vals := r.URL.Query()
	for k, v := range vals {
		switch k {
		case "workspace", "install", "since", "after", "limit", "refused":
			if len(v) > 1 {
				return badRequest("query parameter %q given %d times", k, len(v))
			}
		default:
			return badRequest("unknown query parameter %q (want workspace, install, since, after, limit, refused)", k)
		}
	}
	if v := vals.Get("refused"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("refused %q: want true or false", v)
		}
		q.Refused = b
	}
	q.Workspace = vals.Get("workspace")
	// A member reads the pull audit of its own workspaces only; another
	// workspace answers as one that does not exist.
	if p := principalFrom(r.Context()); !p.IsAdmin() {
		if q.Workspace != "" && p.Role(q.Workspace) == "" {
			return notFoundWorkspace(q.Workspace)
		}
		q.Workspaces = p.WorkspaceNames()
	}
	q.Install = vals.Get("install")
	if v := vals.Get("since"); v != "" {
		t, err := parseSince(v, s.now())
		if err != nil {
			return err
		}
		q.Since = t
	}
	if v := vals.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("after %q: want an event id (a non-negative integer)", v)
		}
		q.AfterID = n
	}
	if v := vals.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxAuditLimit {
			return badRequest("limit %q: want an integer from 1 to %d", v, store.MaxAuditLimit)
		}
		q.Limit = n
	}
	if s.d.AuditFlush != nil {
		if err := s.d.AuditFlush(r.Context()); err != nil {
			return err
		}
	}
	evs, err := s.d.Store.QueryAudit(r.Context(), q)
	if err != nil {
		return err
	}
	out := AuditEvents{Events: make([]AuditEvent, 0, len(evs))}
	names := newAuditNames(s.d.Store)
	for _, e := range evs {
		v := auditView(e)
		if err := names.name(r.Context(), &v); err != nil {
			return err
		}
		out.Events = append(out.Events, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseSince accepts an RFC 3339 time or a positive duration back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("since %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a positive duration (1h, 30m)", v)
}
