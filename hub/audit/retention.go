package audit

import (
	"context"
	"log/slog"
	"time"
)

// Retention defaults.
const (
	// DefaultRetention is how long audit events are kept by default.
	DefaultRetention = 90 * 24 * time.Hour
	// retentionBatch is how many events one DELETE removes: short write
	// transactions, so pulls' audit writes are not held up.
	retentionBatch = 5000
	// retentionEvery is how often old events are looked for.
	retentionEvery = time.Hour
)

// Pruner deletes old audit events (the store).
type Pruner interface {
	DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Prune deletes every event older than before, in batches of batch, and
// returns how many it deleted.
func Prune(ctx context.Context, s Pruner, before time.Time, batch int) (int64, error) {
	var total int64
	for {
		n, err := s.DeleteAuditBefore(ctx, before, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// KeepFor deletes events older than keep now and then every hour, until ctx
// ends. keep <= 0 keeps everything (it returns at once).
func KeepFor(ctx context.Context, s Pruner, keep time.Duration, log *slog.Logger) {
	if keep <= 0 {
		return
	}
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		n, err := Prune(ctx, s, time.Now().Add(-keep), retentionBatch)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("delete old audit events", "older_than", keep, "deleted", n, "err", err)
		case n > 0:
			log.Info("deleted old audit events", "older_than", keep, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
