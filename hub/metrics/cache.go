package metrics

import "github.com/prometheus/client_golang/prometheus"

// cacheMetrics are the pull-through cache's request-side collectors,
// registered by New; the cache's own counters are read through
// RegisterCache.
type cacheMetrics struct {
	// CacheRequests counts blob and manifest requests the cache answered,
	// by kind and result (hit, miss, stale).
	CacheRequests *prometheus.CounterVec
	// CacheServedBytes counts body bytes sent to clients from the cache
	// (hits, stale serves, and misses read along the fill), by kind.
	CacheServedBytes *prometheus.CounterVec
	// CacheSavedBytes counts body bytes sent from the cache without an
	// upstream GET for the request (hits and stale serves): upstream
	// bytes saved.
	CacheSavedBytes *prometheus.CounterVec
	// CacheStaleServes counts requests served while the upstream was
	// unreachable, failing or rate limiting.
	CacheStaleServes prometheus.Counter
	// CacheFallbacks counts blob and manifest requests that went to the
	// upstream uncached because the cache's storage failed (an object
	// store that is unreachable).
	CacheFallbacks prometheus.Counter
}

func newCacheMetrics() cacheMetrics {
	return cacheMetrics{
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_cache_requests_total", Help: "Blob and manifest requests answered by the pull-through cache, by kind and result (hit, miss, stale).",
		}, []string{"kind", "result"}),
		CacheServedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_cache_served_bytes_total", Help: "Body bytes sent to clients from the pull-through cache, by kind.",
		}, []string{"kind"}),
		CacheSavedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullgate_cache_upstream_bytes_saved_total", Help: "Body bytes sent from the cache without an upstream GET for the request (hits and stale serves), by kind.",
		}, []string{"kind"}),
		CacheStaleServes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_cache_stale_serves_total", Help: "Requests served from the cache while the upstream was unreachable, failing or rate limiting.",
		}),
		CacheFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullgate_cache_storage_fallbacks_total", Help: "Blob and manifest requests sent to the upstream uncached because the cache's storage failed (e.g. the object store is unreachable).",
		}),
	}
}

func (c cacheMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.CacheRequests, c.CacheServedBytes, c.CacheSavedBytes, c.CacheStaleServes, c.CacheFallbacks}
}

// CacheStats is what RegisterCache reads from the cache at each scrape.
type CacheStats struct {
	Bytes, MaxBytes, Entries       float64
	Evictions, FillBytes, Failures float64
	Uncached                       float64
	// StoreErrors: storage calls that failed; StoreUp: 1 while the
	// storage answers, 0 while it does not.
	StoreErrors, StoreUp float64
}

// RegisterCache exports the cache's size and counters, read from stats
// at each scrape.
func (h *Hub) RegisterCache(stats func() CacheStats) {
	gauge := func(name, help string, f func(CacheStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	counter := func(name, help string, f func(CacheStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	h.Registry.MustRegister(
		gauge("pullgate_cache_bytes", "Bytes in committed cache entries.", func(s CacheStats) float64 { return s.Bytes }),
		gauge("pullgate_cache_max_bytes", "The cache's size cap (--cache-size).", func(s CacheStats) float64 { return s.MaxBytes }),
		gauge("pullgate_cache_entries", "Committed cache entries.", func(s CacheStats) float64 { return s.Entries }),
		counter("pullgate_cache_evictions_total", "Cache entries evicted (size cap or operator).", func(s CacheStats) float64 { return s.Evictions }),
		counter("pullgate_cache_fill_bytes_total", "Bytes fetched from upstreams into the cache.", func(s CacheStats) float64 { return s.FillBytes }),
		counter("pullgate_cache_fill_failures_total", "Cache fills discarded: upstream errors, digest mismatches, abandoned fills.", func(s CacheStats) float64 { return s.Failures }),
		counter("pullgate_cache_uncached_fills_total", "Fills streamed to their clients without being cached: too large, or the cache full of entries being read.", func(s CacheStats) float64 { return s.Uncached }),
		counter("pullgate_cache_storage_errors_total", "Cache storage calls that failed (object store unreachable or failing).", func(s CacheStats) float64 { return s.StoreErrors }),
		gauge("pullgate_cache_storage_up", "1 while the cache's storage answers, 0 while it does not (requests then go to the upstream uncached).", func(s CacheStats) float64 { return s.StoreUp }),
	)
}
