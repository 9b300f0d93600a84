// Package metrics holds the node agent's Prometheus metrics, registered on
// a registry of their own (no global state), so that several agents can
// run in one process (tests, benchmarks) and /metrics shows only these.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the agent's instruments.
type Metrics struct {
	Registry *prometheus.Registry

	CacheHits   prometheus.Counter
	CacheMisses prometheus.Counter
	// HubLatency is the round trip of requests to the hub by operation
	// (enrol, token, sync) and result (ok, error, unreachable).
	HubLatency *prometheus.HistogramVec
	// Revocations counts revocation messages applied; Purged the cache
	// entries they (or a resync) dropped.
	Revocations prometheus.Counter
	Purged      prometheus.Counter
	// Resyncs counts resyncs with the hub by result (ok, error).
	Resyncs *prometheus.CounterVec
	// NATSConnected is 1 while the node's NATS connection is up.
	NATSConnected prometheus.Gauge
	// Refused is 1 while the hub refuses this node (revoked, cluster gone).
	Refused prometheus.Gauge
	// TokensServed counts credentials handed to helpers by source: cache,
	// hub, or cache_fallback (hub unreachable, cached token still valid).
	TokensServed *prometheus.CounterVec
	// RequestErrors counts failed credential requests by HTTP status.
	RequestErrors *prometheus.CounterVec
	// ContainerdMirrors is the number of upstream hosts with a managed
	// containerd hosts.toml; ContainerdMirrorRestores counts managed files
	// restored after someone edited or deleted them.
	ContainerdMirrors        prometheus.Gauge
	ContainerdMirrorRestores prometheus.Counter
}

// New returns the agent's metrics on a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_agent_cache_hits_total", Help: "Credential requests answered from the token cache.",
		}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_agent_cache_misses_total", Help: "Credential requests that needed a hub round trip.",
		}),
		HubLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pullgate_agent_hub_request_duration_seconds",
			Help:    "Round trip of NATS requests to the hub.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "result"}),
		Revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_agent_revocations_applied_total", Help: "Revocation messages from the hub applied to the cache.",
		}),
		Purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_agent_cache_purged_total", Help: "Cached tokens dropped by revocations and resyncs.",
		}),
		Resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_agent_resyncs_total", Help: "Resyncs of the cache with the hub's live state.",
		}, []string{"result"}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullgate_agent_nats_connected", Help: "1 while the agent's NATS connection to the hub is up.",
		}),
		Refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullgate_agent_refused", Help: "1 while the hub refuses this node (node revoked or cluster deleted).",
		}),
		TokensServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_agent_tokens_served_total", Help: "Install tokens handed to credential helpers, by source.",
		}, []string{"source"}),
		RequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_agent_request_errors_total", Help: "Failed credential requests, by HTTP status.",
		}, []string{"status"}),
		ContainerdMirrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullgate_agent_containerd_mirrors", Help: "Upstream hosts with a containerd hosts.toml managed by the agent.",
		}),
		ContainerdMirrorRestores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_agent_containerd_mirror_restores_total", Help: "Managed containerd hosts.toml files restored after they were edited or deleted.",
		}),
	}
	r.MustRegister(m.CacheHits, m.CacheMisses, m.HubLatency, m.Revocations, m.Purged, m.Resyncs,
		m.NATSConnected, m.Refused, m.TokensServed, m.RequestErrors, m.ContainerdMirrors, m.ContainerdMirrorRestores,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
