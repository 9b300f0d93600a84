package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/pullgate/pullgate/hub/store"
)

// recordRateLimit records an upstream's rate-limit headers (Docker Hub's
// `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`) as
// gauges per upstream, workspace and credential name. Only the numbers are
// kept: no header text, and nothing secret, reaches the labels.
func (p *Proxy) recordRateLimit(ctx context.Context, resp *http.Response, rt route, inst store.Install, cred store.Credential) {
	if p.metrics == nil || p.metrics.RateLimitLimit == nil {
		return
	}
	limit, window, okL := parseRateLimit(resp.Header.Get("Ratelimit-Limit"))
	remaining, _, okR := parseRateLimit(resp.Header.Get("Ratelimit-Remaining"))
	if !okL && !okR {
		return
	}
	ws := p.workspaceName(ctx, inst.WorkspaceID)
	if okL {
		p.metrics.RateLimitLimit.WithLabelValues(rt.repo.Host, ws, cred.Name).Set(limit)
		if window > 0 {
			p.metrics.RateLimitWindow.WithLabelValues(rt.repo.Host, ws, cred.Name).Set(window)
		}
	}
	if okR {
		p.metrics.RateLimitRemaining.WithLabelValues(rt.repo.Host, ws, cred.Name).Set(remaining)
	}
}

// parseRateLimit reads "100;w=21600" (a count, optionally a window in
// seconds). Anything else is ignored.
func parseRateLimit(v string) (n, window float64, ok bool) {
	if v == "" || len(v) > 64 {
		return 0, 0, false
	}
	head, rest, _ := strings.Cut(v, ";")
	count, err := strconv.ParseUint(strings.TrimSpace(head), 10, 32)
	if err != nil {
		return 0, 0, false
	}
	for _, p := range strings.Split(rest, ";") {
		if w, ok := strings.CutPrefix(strings.TrimSpace(p), "w="); ok {
			if s, err := strconv.ParseUint(w, 10, 32); err == nil {
				window = float64(s)
			}
		}
	}
	return float64(count), window, true
}
