package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := e.now.Add(-3 * time.Hour)
	var evs []store.AuditEvent
	for i := range 6 {
		ws, in := "acme", "web"
		if i%2 == 1 {
			in = "api"
		}
		if i == 5 {
			ws = "beta"
		}
		evs = append(evs, store.AuditEvent{
			Time: base.Add(time.Duration(i) * 30 * time.Minute), Workspace: ws, Install: in, Cluster: "prod",
			Node: "n1", ClientAddr: "10.0.0.1:1234", Upstream: "ghcr.io", Repository: "org/app",
			Reference: fmt.Sprintf("v%d", i), Kind: "manifest", Method: "GET", Bytes: int64(100 * i),
			Status: 200, Duration: time.Duration(i) * 1500 * time.Millisecond,
		})
		if i == 2 || i == 5 {
			evs[i].Status, evs[i].Reason, evs[i].Count = 401, "install_disabled", int64(i)
		}
	}
	if err := e.st.AppendAudit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	all, _ := e.st.QueryAudit(ctx, store.AuditQuery{})
	cases := []struct {
		query string
		refs  string
	}{
		{"", "v0 v1 v2 v3 v4 v5"},
		{"workspace=acme", "v0 v1 v2 v3 v4"},
		{"workspace=acme&install=api", "v1 v3"},
		{"install=web", "v0 v2 v4"},
		{"since=1h", "v4 v5"}, // now-1h = base+2h
		{"since=90m&workspace=acme", "v3 v4"},
		{"since=" + base.Add(2*time.Hour).Format(time.RFC3339), "v4 v5"},
		{fmt.Sprintf("after=%d", all[3].ID), "v4 v5"},
		{"limit=2", "v0 v1"},
		{fmt.Sprintf("workspace=acme&after=%d&limit=1", all[1].ID), "v2"},
		{"workspace=nope", ""},
		{"refused=true", "v2 v5"},
		{"refused=true&workspace=acme", "v2"},
		{"refused=false", "v0 v1 v2 v3 v4 v5"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			var out AuditEvents
			e.must("GET", "/api/v1/audit?"+c.query, "", 200, &out)
			var refs []string
			for _, ev := range out.Events {
				refs = append(refs, ev.Reference)
			}
			if got := strings.Join(refs, " "); got != c.refs {
				t.Errorf("events %q, want %q", got, c.refs)
			}
		})
	}
	var out AuditEvents
	e.must("GET", "/api/v1/audit?install=api&limit=1", "", 200, &out)
	got := out.Events[0]
	want := AuditEvent{ID: all[1].ID, Time: base.Add(30 * time.Minute), Workspace: "acme", Install: "api", Cluster: "prod",
		Node: "n1", ClientAddr: "10.0.0.1:1234", Upstream: "ghcr.io", Repository: "org/app", Reference: "v1",
		Kind: "manifest", Method: "GET", Bytes: 100, Status: 200, DurationMS: 1500, Count: 1}
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time = want.Time
	if got != want {
		t.Errorf("event %+v\nwant  %+v", got, want)
	}
	e.must("GET", "/api/v1/audit?refused=1&workspace=beta", "", 200, &out)
	if len(out.Events) != 1 || out.Events[0].Reason != "install_disabled" || out.Events[0].Count != 5 || out.Events[0].Status != 401 {
		t.Errorf("refused events %+v", out.Events)
	}
	b := e.must("GET", "/api/v1/audit?workspace=nope", "", 200, nil)
	if !strings.Contains(b, `"events":[]`) {
		t.Errorf("empty audit: %s", b)
	}
}
