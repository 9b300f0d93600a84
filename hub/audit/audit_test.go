package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
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

func TestWriterFlushesOnInterval(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, slog.Default(), WithInterval(10*time.Millisecond))
	defer w.Close()
	w.Record(store.AuditEvent{Workspace: "ws", Kind: "manifest", Status: 200})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got, _ := st.QueryAudit(context.Background(), store.AuditQuery{Workspace: "ws"})
		if len(got) == 1 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("event not written within 5s by the interval flush")
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
