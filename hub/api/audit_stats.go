package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Statistics bounds: a request covers at most maxStatsBuckets buckets, and
// without a bucket width the smallest of statsWidths that gives at most
// defaultStatsBuckets is used.
const (
	maxStatsBuckets     = 1000
	defaultStatsBuckets = 120
	defaultStatsRange   = 24 * time.Hour
)

var statsWidths = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// AuditStats is the body of GET /api/v1/audit/stats: pulls, requests and
// bytes per time bucket and per install or upstream host.
type AuditStats struct {
	By     string `json:"by"`
	Bucket string `json:"bucket"` // the width, a Go duration
	// BucketSeconds is the width in seconds.
	BucketSeconds int64           `json:"bucket_seconds"`
	Since         time.Time       `json:"since"`
	Until         time.Time       `json:"until"`
	Buckets       []AuditStatsRow `json:"buckets"`
}

// AuditStatsRow is one group's traffic in one bucket (empty buckets are
// left out).
type AuditStatsRow struct {
	Start    time.Time `json:"start"`
	Key      string    `json:"key"` // the install's name or the upstream host
	Requests int64     `json:"requests"`
	Pulls    int64     `json:"pulls"`
	Refused  int64     `json:"refused"`
	Bytes    int64     `json:"bytes"`
}

func (s *server) auditStats(w http.ResponseWriter, r *http.Request) error {
	allowed := slices.DeleteFunc(slices.Clone(auditParams), func(p string) bool { return slices.Contains(pagingParams, p) })
	vals := r.URL.Query()
	q, err := parseAuditQuery(vals, s.now(), allowed, []string{"by", "bucket"})
	if err != nil {
		return err
	}
	if err := scopeAudit(r, &q); err != nil {
		return err
	}
	by := vals.Get("by")
	switch by {
	case "":
		by = store.AuditByInstall
	case store.AuditByInstall, store.AuditByUpstream:
	default:
		return badRequest("by %q: want install or upstream", by)
	}
	if q.Until.IsZero() {
		q.Until = s.now()
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-defaultStatsRange)
	}
	span := q.Until.Sub(q.Since)
	if span <= 0 {
		return badRequest("since %s is not before until %s", q.Since.UTC().Format(time.RFC3339), q.Until.UTC().Format(time.RFC3339))
	}
	var width time.Duration
	if v := vals.Get("bucket"); v != "" {
		width, err = time.ParseDuration(v)
		if err != nil || width < time.Minute {
			return badRequest("bucket %q: want a duration of at least 1m (5m, 1h)", v)
		}
		if span/width > maxStatsBuckets {
			return badRequest("bucket %s: %s would make more than %d buckets; widen the bucket or narrow since/until", v, span, maxStatsBuckets)
		}
	} else {
		width = statsWidths[len(statsWidths)-1]
		for _, d := range statsWidths {
			if span/d <= defaultStatsBuckets {
				width = d
				break
			}
		}
		// Even the widest default bucket has a bound: since=1970 with
		// the audit kept for ever is thousands of weeks.
		if span/width > maxStatsBuckets {
			return badRequest("since/until: %s would make more than %d buckets of %s; give a bucket or a shorter range", span, maxStatsBuckets, width)
		}
	}
	if s.d.AuditFlush != nil {
		if err := s.d.AuditFlush(r.Context()); err != nil {
			return err
		}
	}
	rows, err := s.d.Store.AuditStats(r.Context(), q, by, width)
	if err != nil {
		return err
	}
	out := AuditStats{By: by, Bucket: width.String(), BucketSeconds: int64(width / time.Second), Since: q.Since.UTC(), Until: q.Until.UTC(), Buckets: make([]AuditStatsRow, 0, len(rows))}
	for _, b := range rows {
		out.Buckets = append(out.Buckets, AuditStatsRow{Start: b.Start.UTC(), Key: b.Key, Requests: b.Requests, Pulls: b.Pulls, Refused: b.Refused, Bytes: b.Bytes})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
