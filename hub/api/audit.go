package api

import (
	"net/http"
)

func (s *server) queryAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAuditQuery(r.URL.Query(), s.now(), auditParams, nil)
	if err != nil {
		return err
	}
	if err := scopeAudit(r, &q); err != nil {
		return err
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
