package api

import (
	"context"
	"encoding/csv"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

func seedAudit(t *testing.T, e *testEnv) time.Time {
	t.Helper()
	base := e.now.Add(-2 * time.Hour).Truncate(time.Hour)
	evs := []store.AuditEvent{
		{Time: base, Workspace: "acme", Install: "web", Upstream: "ghcr.io", Repository: "acme/app", Node: "node_1", Reference: "v1", Kind: "manifest", Method: "GET", Status: 200, Bytes: 10},
		{Time: base.Add(time.Minute), Workspace: "acme", Install: "web", Upstream: "ghcr.io", Repository: "acme/app", Node: "node_1", Reference: "sha256:1", Kind: "blob", Method: "GET", Status: 200, Bytes: 1000},
		{Time: base.Add(time.Hour), Workspace: "acme", Install: "=cmd|' /C calc'!A0", Upstream: "docker.io", Repository: "library/redis", Node: "node_2", Reference: "-7", Kind: "manifest", Method: "GET", Status: 404},
		{Time: base.Add(time.Hour + time.Minute), Workspace: "acme", Install: "web", Upstream: "ghcr.io", Repository: "acme/app", Node: "node_2", Reference: "v2", Kind: "manifest", Method: "GET", Status: 401, Reason: "install_disabled", Count: 4},
	}
	if err := e.st.AppendAudit(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return base
}

func TestAuditFilters(t *testing.T) {
	e := newEnv(t)
	base := seedAudit(t, e)
	cases := []struct{ query, refs string }{
		{"repository=acme/app", "v1 sha256:1 v2"},
		{"upstream=docker.io", "-7"},
		{"node=node_2", "-7 v2"},
		{"status=4xx", "-7 v2"},
		{"status=200", "v1 sha256:1"},
		{"until=" + base.Add(time.Hour).Format(time.RFC3339), "v1 sha256:1"},
		{"since=" + base.Add(time.Minute).Format(time.RFC3339) + "&until=" + base.Add(time.Hour+time.Second).Format(time.RFC3339), "sha256:1 -7"},
		{"order=desc&limit=3", "v2 -7 sha256:1"},
	}
	for _, c := range cases {
		var out AuditEvents
		e.must("GET", "/api/v1/audit?"+c.query, "", 200, &out)
		var refs []string
		for _, ev := range out.Events {
			refs = append(refs, ev.Reference)
		}
		if got := strings.Join(refs, " "); got != c.refs {
			t.Errorf("%s: events %q, want %q", c.query, got, c.refs)
		}
	}
	bad := []struct{ query, msg string }{
		{"status=600", "status"},
		{"status=4yy", "status"},
		{"order=sideways", "order"},
		{"before=-1", "before"},
		{"until=yesterday", "until"},
		{"since=1h&until=2h", "not after"},
		{"color=red", "unknown query parameter"},
	}
	for _, c := range bad {
		if b := e.must("GET", "/api/v1/audit?"+c.query, "", 400, nil); !strings.Contains(b, c.msg) {
			t.Errorf("%s: %s, want it to name %q", c.query, b, c.msg)
		}
	}
}

func TestAuditStatsAPI(t *testing.T) {
	e := newEnv(t)
	base := seedAudit(t, e)
	var st AuditStats
	e.must("GET", "/api/v1/audit/stats?workspace=acme&bucket=1h&since=3h", "", 200, &st)
	if st.By != "install" || st.Bucket != "1h0m0s" || len(st.Buckets) != 3 {
		t.Fatalf("stats = %+v", st)
	}
	if b := st.Buckets[0]; !b.Start.Equal(base) || b.Key != "web" || b.Pulls != 1 || b.Requests != 2 || b.Bytes != 1010 {
		t.Errorf("first bucket %+v", b)
	}
	if b := st.Buckets[2]; b.Key != "web" || b.Refused != 4 || b.Requests != 4 || b.Pulls != 0 {
		t.Errorf("refusals bucket %+v", b)
	}
	e.must("GET", "/api/v1/audit/stats?by=upstream&since=3h", "", 200, &st)
	if st.By != "upstream" || st.Bucket != "5m0s" { // 3h / 120 buckets
		t.Errorf("default bucket for 3h: %+v", st)
	}
	for _, q := range []string{"by=repository", "bucket=1s", "bucket=1m&since=720h", "since=1970-01-01T00:00:00Z", "bucket=1m&since=0001-01-01T00:00:00Z", "after=3", "limit=5", "since=1h&until=2h"} {
		e.must("GET", "/api/v1/audit/stats?"+q, "", 400, nil)
	}
}

func TestAuditExportCSV(t *testing.T) {
	e := newEnv(t)
	seedAudit(t, e)
	req := httptest.NewRequest("GET", "/api/v1/audit/export?workspace=acme", nil)
	req.Header.Set("Authorization", "Bearer "+testAdmin)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("export: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, body)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(auditCSVHeader, ",") {
		t.Fatalf("rows %q", rows)
	}
	// A tenant-chosen value that a spreadsheet would run as a formula is
	// defused; the status and the reason come through.
	r := rows[3]
	if r[3] != "'=cmd|' /C calc'!A0" || r[9] != "'-7" || r[12] != "404" {
		t.Errorf("row %q", r)
	}
	if r := rows[4]; r[15] != "install_disabled" || r[16] != "4" || r[12] != "401" {
		t.Errorf("refusal row %q", r)
	}
	e.must("GET", "/api/v1/audit/export?status=abc", "", 400, nil)
}
