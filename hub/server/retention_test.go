package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testlog"
)

// serve deletes audit events past --audit-retention (default 90 days).
func TestServeDeletesOldAudit(t *testing.T) {
	if def := Command().Flags().Lookup("audit-retention").DefValue; def != "90d" {
		t.Errorf("--audit-retention defaults to %s, want 90d", def)
	}
	data := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(data, "pullgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.AppendAudit(ctx, []store.AuditEvent{
		{Time: now.Add(-100 * 24 * time.Hour), Workspace: "old", Status: 200},
		{Time: now.Add(-80 * 24 * time.Hour), Workspace: "kept", Status: 200},
	}); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithCancel(ctx)
	done, ready := make(chan error, 1), make(chan string, 1)
	go func() {
		done <- Run(rctx, Config{DataDir: data, Listen: "127.0.0.1:0", AuditRetention: 90 * 24 * time.Hour,
			Logger: slog.New(slog.NewTextHandler(&testlog.Buffer{}, nil)), Ready: func(a string) { ready <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("hub: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := st.QueryAudit(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			if evs[0].Workspace != "kept" {
				t.Fatalf("kept %+v, want the 80-day-old event", evs[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events after 30s, want the 100-day-old one deleted", len(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
