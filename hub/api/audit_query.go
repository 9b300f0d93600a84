package api

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// auditParams are the query parameters of GET /api/v1/audit (and, less
// the paging ones, of its export and statistics).
var auditParams = []string{"workspace", "install", "repository", "upstream", "node", "status",
	"since", "until", "after", "before", "order", "limit", "refused"}

// pagingParams select a page of events; the statistics ignore them.
var pagingParams = []string{"after", "before", "order", "limit"}

// parseAuditQuery reads the filters of an audit request. extra names
// further parameters the caller reads itself; allowed lists the ones
// accepted here (auditParams or a subset).
func parseAuditQuery(vals url.Values, now time.Time, allowed, extra []string) (store.AuditQuery, error) {
	q := store.AuditQuery{}
	if err := checkParams(vals, append(slices.Clone(allowed), extra...)); err != nil {
		return q, err
	}
	if v := vals.Get("refused"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return q, badRequest("refused %q: want true or false", v)
		}
		q.Refused = b
	}
	q.Workspace = vals.Get("workspace")
	q.Install = vals.Get("install")
	q.Repository = vals.Get("repository")
	q.Upstream = vals.Get("upstream")
	q.Node = vals.Get("node")
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := vals.Get(p.name); v != "" {
			t, err := parseTimeParam(p.name, v, now)
			if err != nil {
				return q, err
			}
			*p.dst = t
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, badRequest("until %s is not after since %s", q.Until.UTC().Format(time.RFC3339), q.Since.UTC().Format(time.RFC3339))
	}
	if v := vals.Get("status"); v != "" {
		lo, hi, err := parseStatus(v)
		if err != nil {
			return q, err
		}
		q.StatusMin, q.StatusMax = lo, hi
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"after", &q.AfterID}, {"before", &q.BeforeID}} {
		if v := vals.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return q, badRequest("%s %q: want an event id (a non-negative integer)", p.name, v)
			}
			*p.dst = n
		}
	}
	switch v := vals.Get("order"); v {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, badRequest("order %q: want asc (oldest first, the default) or desc (newest first)", v)
	}
	var err error
	q.Limit, err = parseLimit(vals.Get("limit"))
	return q, err
}

// parseLimit reads a limit parameter: 0 when v is empty (the store's
// default), else 1 to store.MaxAuditLimit.
func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxAuditLimit {
		return 0, badRequest("limit %q: want an integer from 1 to %d", v, store.MaxAuditLimit)
	}
	return n, nil
}

// checkParams refuses a query parameter not in want, or one given more
// than once.
func checkParams(vals url.Values, want []string) error {
	for k, v := range vals {
		if !slices.Contains(want, k) {
			return badRequest("unknown query parameter %q (want %s)", k, strings.Join(want, ", "))
		}
		if len(v) > 1 {
			return badRequest("query parameter %q given %d times", k, len(v))
		}
	}
	return nil
}

// parseStatus reads an HTTP status (404) or a class of them (4xx).
func parseStatus(v string) (int, int, error) {
	if len(v) == 3 && (v[1] == 'x' || v[1] == 'X') && (v[2] == 'x' || v[2] == 'X') && v[0] >= '1' && v[0] <= '5' {
		lo := int(v[0]-'0') * 100
		return lo, lo + 99, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, badRequest("status %q: want an HTTP status (404) or a class (1xx to 5xx)", v)
	}
	return n, n, nil
}

// parseTimeParam accepts an RFC 3339 time or a positive duration back
// from now.
func parseTimeParam(name, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("%s %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a positive duration (1h, 30m)", name, v)
}

// parseSince reads a since parameter (RFC 3339 or a duration back).
func parseSince(v string, now time.Time) (time.Time, error) {
	return parseTimeParam("since", v, now)
}
