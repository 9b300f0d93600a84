package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

func TestWriterFlushesEverything(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, slog.Default(), WithInterval(time.Hour)) // only size and Close flush
	var wg sync.WaitGroup
	const writers, each = 4, 600
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Record(store.AuditEvent{Workspace: "ws", Install: fmt.Sprintf("i%d", g), Repository: "org/app", Reference: fmt.Sprint(i), Kind: "blob", Status: 200, Bytes: int64(i)})
			}
		}()
	}
	wg.Wait()
	w.Close()
	got, err := st.QueryAudit(context.Background(), store.AuditQuery{Workspace: "ws", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each {
		t.Fatalf("%d events stored, want %d", len(got), writers*each)
	}
}

// In a synctest bubble the interval is the writer's own ticker on the
// bubble's clock: one interval later the event is in the store.
func TestWriterFlushesOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		const interval = 10 * time.Millisecond
		w := NewWriter(st, slog.Default(), WithInterval(interval))
		defer w.Close()
		w.Record(store.AuditEvent{Workspace: "ws", Kind: "manifest", Status: 200})
		synctest.Wait()
		if got, _ := st.QueryAudit(context.Background(), store.AuditQuery{Workspace: "ws"}); len(got) != 0 {
			t.Fatalf("%d events written before the interval", len(got))
		}
		time.Sleep(interval + time.Millisecond) // the bubble's clock: no real wait
		synctest.Wait()
		if got, _ := st.QueryAudit(context.Background(), store.AuditQuery{Workspace: "ws"}); len(got) != 1 {
			t.Fatalf("%d events written after one interval, want 1 by the interval flush", len(got))
		}
	})
}

// Flush writes what was recorded before it, without waiting for the
// interval: an audit query right after a pull sees the pull.
func TestWriterFlush(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, slog.Default(), WithInterval(time.Hour))
	for i := range 3 {
		w.Record(store.AuditEvent{Workspace: "ws", Kind: "blob", Reference: fmt.Sprint(i), Status: 200})
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := st.QueryAudit(context.Background(), store.AuditQuery{Workspace: "ws"})
	if err != nil || len(got) != 3 {
		t.Fatalf("after Flush: %d events, %v; want 3", len(got), err)
	}
	w.Close()
	if err := w.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
}
