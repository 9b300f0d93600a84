// Package audit writes the proxy's audit events to the store in batches, off
// the request path: a pull waits for a channel send, not for a database
// write. Close flushes everything still queued.
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Appender stores audit events (the store).
type Appender interface {
	AppendAudit(ctx context.Context, events []store.AuditEvent) error
}

// Writer batches audit events into the store.
type Writer struct {
	store    Appender
	log      *slog.Logger
	onError  func()
	events   chan store.AuditEvent
	flushes  chan chan struct{}
	interval time.Duration
	maxBatch int
	done     chan struct{}
	once     sync.Once
	refused  *refusals
	window   time.Duration
	now      func() time.Time
}

// Option configures a Writer.
type Option func(*Writer)

// WithInterval sets how long events may wait before a batch is written.
func WithInterval(d time.Duration) Option { return func(w *Writer) { w.interval = d } }

// WithRefusalWindow sets the window over which refused requests beyond a
// burst are aggregated (default DefaultRefusalWindow).
func WithRefusalWindow(d time.Duration) Option { return func(w *Writer) { w.window = d } }

// WithErrorHook is called once per batch that could not be written.
func WithErrorHook(f func()) Option { return func(w *Writer) { w.onError = f } }

// NewWriter starts a writer. Call Close to flush and stop it.
func NewWriter(s Appender, log *slog.Logger, opts ...Option) *Writer {
	w := &Writer{store: s, log: log, onError: func() {}, events: make(chan store.AuditEvent, 8192), flushes: make(chan chan struct{}),
		interval: 100 * time.Millisecond, maxBatch: 512, done: make(chan struct{}),
		window: DefaultRefusalWindow, now: time.Now}
	for _, o := range opts {
		o(w)
	}
	w.refused = newRefusals(w.window, w.now)
	go w.run()
	return w
}

// Record queues an event. When the queue is full it waits (backpressure)
// rather than drop an event. Refused requests (Reason set) are
// rate-limited and aggregated per reason and token (see refusals).
func (w *Writer) Record(e store.AuditEvent) {
	if e.Reason == "" {
		w.events <- e
		return
	}
	write, due := w.refused.admit(e)
	for _, s := range due {
		w.events <- s
	}
	if write {
		w.events <- e
	}
}

// Flush writes every event recorded before it was called (the audit API
// calls it before a query, so that a pull that just ended shows up). Refused
// requests counted into an aggregate are not: the aggregate is written when
// its window ends. Flush returns early when ctx ends or the writer closes.
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case w.flushes <- done:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops the writer. Record must not be
// called after Close.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.events) })
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	batch := make([]store.AuditEvent, 0, w.maxBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.store.AppendAudit(ctx, batch); err != nil {
			w.onError()
			w.log.Error("write audit events", "events", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-w.events:
			if !ok {
				batch = append(batch, w.refused.drain()...)
				flush()
				return
			}
			batch = append(batch, e)
			if len(batch) >= w.maxBatch {
				flush()
			}
		case <-tick.C:
			batch = append(batch, w.refused.expire()...)
			flush()
		case done := <-w.flushes:
			// Everything queued before the request: Record's send
			// happened before Flush's.
			for n := len(w.events); n > 0; n-- {
				e, ok := <-w.events
				if !ok {
					break
				}
				batch = append(batch, e)
			}
			flush()
			close(done)
		}
	}
}
