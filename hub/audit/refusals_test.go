package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// A flood of refused requests costs a bounded number of rows: tokens that
// did not verify one row per reason and window (plus one aggregate), an
// authentic token's refusals a burst per install and reason (plus one
// aggregate); every request is still counted.
func TestRefusalsAggregated(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, slog.Default(), WithRefusalWindow(time.Hour))
	const anon, revoked, served = 5000, 300, 40
	for i := range anon {
		w.Record(store.AuditEvent{Reason: "signature", Status: 401, Kind: "manifest", ClientAddr: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)})
	}
	for range revoked {
		w.Record(store.AuditEvent{Reason: "install_disabled", Status: 401, Kind: "blob", Workspace: "acme", Install: "web"})
	}
	for range served {
		w.Record(store.AuditEvent{Status: 200, Kind: "blob", Workspace: "acme", Install: "api"})
	}
	w.Close()

	all, err := st.QueryAudit(context.Background(), store.AuditQuery{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	rows, counts := map[string]int{}, map[string]int64{}
	for _, e := range all {
		rows[e.Reason]++
		counts[e.Reason] += e.Count
	}
	want := map[string][2]int64{ // rows, requests
		"signature":        {anonymousBurst + 1, anon},
		"install_disabled": {tokenBurst + 1, revoked},
		"":                 {served, served},
	}
	for reason, w := range want {
		if int64(rows[reason]) != w[0] || counts[reason] != w[1] {
			t.Errorf("reason %q: %d rows for %d requests, want %d rows for %d", reason, rows[reason], counts[reason], w[0], w[1])
		}
	}
	refused, err := st.QueryAudit(context.Background(), store.AuditQuery{Refused: true, Workspace: "acme"})
	if err != nil || len(refused) != tokenBurst+1 {
		t.Fatalf("refused in acme: %d events, %v", len(refused), err)
	}
	if last := refused[len(refused)-1]; last.Install != "web" || last.Count != revoked-tokenBurst {
		t.Errorf("aggregate %+v, want install web, count %d", last, revoked-tokenBurst)
	}
}

// Keys are bounded too: many installs' refusals beyond maxRefusalKeys fold
// into one key per reason.
func TestRefusalKeysBounded(t *testing.T) {
	r := newRefusals(time.Hour, time.Now)
	for i := range 3 * maxRefusalKeys {
		r.admit(store.AuditEvent{Reason: "install_disabled", Workspace: "acme", Install: fmt.Sprint("i", i)})
	}
	if len(r.keys) > maxRefusalKeys+1 {
		t.Fatalf("%d keys tracked, want at most %d", len(r.keys), maxRefusalKeys+1)
	}
}

// A window's aggregate is written when the window ends, not only on Close
// (on the bubble's clock: the writer's ticker and its clock are the
// bubble's).
func TestRefusalWindowFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		const window = 50 * time.Millisecond
		w := NewWriter(st, slog.Default(), WithInterval(10*time.Millisecond), WithRefusalWindow(window))
		defer w.Close()
		for range 10 {
			w.Record(store.AuditEvent{Reason: "malformed", Status: 401})
		}
		counted := func() int64 {
			evs, _ := st.QueryAudit(context.Background(), store.AuditQuery{Refused: true})
			var n int64
			for _, e := range evs {
				n += e.Count
			}
			return n
		}
		time.Sleep(window / 2) // the bubble's clock: no real wait
		synctest.Wait()
		if n := counted(); n >= 10 {
			t.Fatalf("%d refusals counted before the window ended: the aggregate came early", n)
		}
		time.Sleep(window) // past the window's end and a tick
		synctest.Wait()
		if n := counted(); n != 10 {
			t.Fatalf("%d refusals counted, want the aggregate of 10 written when its window ended", n)
		}
	})
}
