package api

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// auditCSVHeader is the first line of GET /api/v1/audit/export.
var auditCSVHeader = []string{"id", "time", "workspace", "install", "cluster", "node", "client_addr", "upstream",
	"repository", "reference", "kind", "method", "status", "bytes", "duration_ms", "reason", "count", "cache"}

// exportAudit answers the events GET /api/v1/audit would, as CSV (up to
// store.MaxAuditLimit rows; the default limit is that maximum).
func (s *server) exportAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAuditQuery(r.URL.Query(), s.now(), auditParams, nil)
	if err != nil {
		return err
	}
	if err := scopeAudit(r, &q); err != nil {
		return err
	}
	if q.Limit == 0 {
		q.Limit = store.MaxAuditLimit
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
	names := newAuditNames(s.d.Store)
	views := make([]AuditEvent, 0, len(evs))
	for _, e := range evs {
		v := auditView(e)
		if err := names.name(r.Context(), &v); err != nil {
			return err
		}
		views = append(views, v)
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="pullgate-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(auditCSVHeader)
	for _, v := range views {
		node := v.Node
		if v.NodeName != "" {
			node = v.NodeName
		}
		cluster := v.Cluster
		if v.ClusterName != "" {
			cluster = v.ClusterName
		}
		_ = cw.Write([]string{strconv.FormatInt(v.ID, 10), v.Time.Format(time.RFC3339Nano), cell(v.Workspace), cell(v.Install),
			cell(cluster), cell(node), cell(v.ClientAddr), cell(v.Upstream), cell(v.Repository), cell(v.Reference), cell(v.Kind),
			cell(v.Method), strconv.Itoa(v.Status), strconv.FormatInt(v.Bytes, 10), strconv.FormatInt(v.DurationMS, 10),
			cell(v.Reason), strconv.FormatInt(v.Count, 10), cell(v.Cache)})
	}
	cw.Flush()
	return nil
}

// cell defuses a value a spreadsheet would run as a formula (CSV
// injection): names and references come from tenants and clients.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
