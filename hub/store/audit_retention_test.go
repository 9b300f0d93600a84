package store

import (
	"context"
	"testing"
	"time"
)

// auditStore is what the refusal and retention tests need of a store, so
// that they run on every dialect available.
type auditStore interface {
	AppendAudit(ctx context.Context, events []AuditEvent) error
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

func TestAuditRefusalsAndRetention(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQL) { testAuditRefusalsAndRetention(t, s) })
}

func testAuditRefusalsAndRetention(t *testing.T, s auditStore) {
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var batch []AuditEvent
	for i := range 25 {
		e := AuditEvent{Time: t0.Add(time.Duration(i) * time.Hour), Workspace: "acme", Install: "web", Kind: "blob", Method: "GET", Status: 200}
		if i%5 == 0 {
			e.Status, e.Reason, e.Count = 401, "install_disabled", int64(i+1)
		}
		batch = append(batch, e)
	}
	if err := s.AppendAudit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	refused, err := s.QueryAudit(ctx, AuditQuery{Refused: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 5 {
		t.Fatalf("refused: %d events, want 5", len(refused))
	}
	for i, e := range refused {
		if e.Reason != "install_disabled" || e.Status != 401 || e.Count != int64(i*5+1) {
			t.Errorf("refused event %d = %+v", i, e)
		}
	}

	// Retention: everything before hour 20 goes, in batches of 7.
	cut := t0.Add(20 * time.Hour)
	var total int64
	for {
		n, err := s.DeleteAuditBefore(ctx, cut, 7)
		if err != nil {
			t.Fatal(err)
		}
		if n > 7 {
			t.Fatalf("deleted %d in one batch of 7", n)
		}
		total += n
		if n < 7 {
			break
		}
	}
	if total != 20 {
		t.Fatalf("deleted %d events, want 20", total)
	}
	left, err := s.QueryAudit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 5 || left[0].Time.Before(cut) {
		t.Fatalf("left %d events, first at %v; want 5 from %v", len(left), left[0].Time, cut)
	}
	if _, err := s.DeleteAuditBefore(ctx, cut, 0); err == nil {
		t.Fatal("DeleteAuditBefore with limit 0: no error")
	}
}
