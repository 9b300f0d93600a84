package audit

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// In a synctest bubble (time.Now and KeepFor's ticker on the bubble's
// clock), so that the retention loop's first pass is waited for, not polled.
func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := context.Background()
		now := time.Now()
		var evs []store.AuditEvent
		for i := range 120 {
			evs = append(evs, store.AuditEvent{Time: now.Add(-time.Duration(200-i) * 24 * time.Hour), Workspace: "acme", Status: 200})
		}
		if err := st.AppendAudit(ctx, evs); err != nil {
			t.Fatal(err)
		}

		// Events 0..109 are older than 90 days; batches of 7 take several.
		n, err := Prune(ctx, st, now.Add(-90*24*time.Hour), 7)
		if err != nil || n != 110 {
			t.Fatalf("Prune = %d, %v; want 110", n, err)
		}
		left, err := st.QueryAudit(ctx, store.AuditQuery{Limit: store.MaxAuditLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range left {
			if e.Time.Before(now.Add(-90 * 24 * time.Hour)) {
				t.Fatalf("event of %v kept", e.Time)
			}
		}
		if int64(len(left))+n != 120 || len(left) == 0 {
			t.Fatalf("pruned %d, kept %d of 120", n, len(left))
		}

		// 0 keeps everything: KeepFor returns at once without deleting.
		done := make(chan struct{})
		go func() { KeepFor(ctx, st, 0, slog.Default()); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("KeepFor(0) did not return")
		}
		// A retention loop deletes on start, then stops with its context.
		if err := st.AppendAudit(ctx, []store.AuditEvent{{Time: now.Add(-48 * time.Hour), Workspace: "old"}}); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done = make(chan struct{})
		go func() { KeepFor(cctx, st, 24*time.Hour, slog.Default()); close(done) }()
		synctest.Wait() // the loop's first pass is done: it waits for its ticker
		if old, _ := st.QueryAudit(ctx, store.AuditQuery{Workspace: "old"}); len(old) != 0 {
			t.Fatal("retention loop did not delete a 2-day-old event with 24h retention")
		}
		cancel()
		<-done
	})
}
