// Package metrics holds the hub's Prometheus collectors on a registry of
// their own (no global state), and the HTTP middleware that counts requests.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Hub is every metric the hub exports.
type Hub struct {
	Registry       *prometheus.Registry
	Requests       *prometheus.CounterVec   // route, method, code
	Latency        *prometheus.HistogramVec // route, method
	BytesProxied   *prometheus.CounterVec   // upstream, kind
	UpstreamErrors *prometheus.CounterVec   // upstream, reason
	TokensMinted   prometheus.Counter
	TokensRefused  *prometheus.CounterVec // reason
	AuditDropped   prometheus.Counter
	// Upstream rate limits as upstreams report them (Docker Hub's
	// ratelimit-* headers), by upstream, workspace and credential name.
	RateLimitLimit     *prometheus.GaugeVec
	RateLimitRemaining *prometheus.GaugeVec
	RateLimitWindow    *prometheus.GaugeVec
	// TokenFetches counts the hub's own upstream token fetches (ECR
	// GetAuthorizationToken, Entra ID + ACR exchange) by kind and result.
	TokenFetches *prometheus.CounterVec
	cacheMetrics
}

// New registers the hub's collectors, plus Go runtime and process ones.
func New() *Hub {
	h := &Hub{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pullgate_http_request_duration_seconds", Help: "Time to the end of the response, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		BytesProxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_proxy_bytes_total", Help: "Response body bytes sent to clients by the pull proxy.",
		}, []string{"upstream", "kind"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_upstream_errors_total", Help: "Failed or refused upstream requests, by upstream and reason.",
		}, []string{"upstream", "reason"}),
		TokensMinted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_tokens_minted_total", Help: "Install tokens minted.",
		}),
		TokensRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_tokens_refused_total", Help: "Install tokens refused by the proxy, by reason.",
		}, []string{"reason"}),
		AuditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_audit_write_errors_total", Help: "Audit batches that could not be written.",
		}),
	}
	rl := []string{"upstream", "workspace", "credential"}
	h.RateLimitLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullgate_upstream_ratelimit_limit", Help: "Pull limit an upstream reported for a credential (ratelimit-limit).",
	}, rl)
	h.RateLimitRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullgate_upstream_ratelimit_remaining", Help: "Pulls left in the window an upstream reported for a credential (ratelimit-remaining).",
	}, rl)
	h.RateLimitWindow = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullgate_upstream_ratelimit_window_seconds", Help: "Length of the rate-limit window an upstream reported (w= of ratelimit-limit).",
	}, rl)
	h.TokenFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pullgate_upstream_token_fetches_total", Help: "Upstream registry tokens the hub fetched itself (ECR, ACR), by credential kind and result.",
	}, []string{"kind", "result"})
	h.cacheMetrics = newCacheMetrics()
	h.Registry.MustRegister(h.cacheMetrics.collectors()...)
	h.Registry.MustRegister(h.RateLimitLimit, h.RateLimitRemaining, h.RateLimitWindow, h.TokenFetches)
	h.Registry.MustRegister(h.Requests, h.Latency, h.BytesProxied, h.UpstreamErrors, h.TokensMinted, h.TokensRefused, h.AuditDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return h
}

// Handler serves /metrics.
func (h *Hub) Handler() http.Handler {
	return promhttp.HandlerFor(h.Registry, promhttp.HandlerOpts{Registry: h.Registry})
}

// Instrument counts requests of a route and observes their latency, with
// promhttp's wrappers (its writer keeps Flusher, Hijacker and Unwrap). The
// method label is Method's, not promhttp's lower-case one, so that the
// series stay those the proxy counts beside them.
func (h *Hub) Instrument(route string, next http.Handler) http.Handler {
	method := promhttp.WithLabelFromRequest("method", func(r *http.Request) string { return Method(r.Method) })
	l := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerDuration(h.Latency.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(h.Requests.MustCurryWith(l), next, method), method)
}

// Method is the label value of an HTTP method. Any token is a valid method
// and requests are counted before authentication, so the label takes a
// fixed set of values: a client must not be able to add series.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
