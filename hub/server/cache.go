package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/proxy"
	"github.com/pullgate/pullgate/hub/store"
)

// CacheConfig is the pull-through cache part of Config.
type CacheConfig struct {
	// Off runs the hub without a cache.
	Off bool
	// Backend is where entries live: "local" ("" too: Dir) or "s3" (S3).
	Backend string
	// Dir holds the entries ("" = <data>/cache); with S3, the fills
	// being staged before their upload.
	Dir string
	// S3 is the object store of the s3 backend.
	S3 S3CacheConfig
	// MaxBytes caps the entries (0 = cache.DefaultMaxBytes).
	MaxBytes int64
	// proxy.CacheConfig's durations: ConfirmTTL, TagTTL, StaleWindow (0
	// turns serve-stale off).
	Proxy proxy.CacheConfig
}

// openCache opens the cache of cfg, or returns nil when it is off.
func openCache(ctx context.Context, cfg Config) (*cache.Cache, error) {
	if cfg.Cache.Off {
		return nil, nil
	}
	dir := cfg.Cache.Dir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "cache")
	}
	var s cache.Storage
	switch cfg.Cache.Backend {
	case "", "local":
		ls, err := cache.NewLocal(dir)
		if err != nil {
			return nil, err
		}
		s = ls
	case "s3":
		ss, err := openS3Storage(ctx, cfg, filepath.Join(dir, "staging"))
		if err != nil {
			return nil, err
		}
		s = ss
	default:
		return nil, fmt.Errorf("cache backend %q: want local or s3", cfg.Cache.Backend)
	}
	c, err := cache.Open(ctx, s, cfg.Cache.MaxBytes, cache.WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	return c, nil
}

func registerCacheMetrics(m *metrics.Hub, c *cache.Cache) {
	m.RegisterCache(func() metrics.CacheStats {
		s := c.Stats()
		return metrics.CacheStats{Bytes: float64(s.Bytes), MaxBytes: float64(s.MaxBytes), Entries: float64(s.Entries),
			Evictions: float64(s.Evictions), FillBytes: float64(s.FilledBytes), Failures: float64(s.FillFailures),
			Uncached: float64(s.Uncached), StoreErrors: float64(s.StoreErrors), StoreUp: b2f(s.StoreAvailable)}
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cacheAdmin adapts the cache and the proxy's Warm to the API.
type cacheAdmin struct {
	c  *cache.Cache
	px *proxy.Proxy
}

func (a cacheAdmin) Stats() api.CacheStats {
	s := a.c.Stats()
	return api.CacheStats{Entries: s.Entries, Bytes: s.Bytes, MaxBytes: s.MaxBytes, Filling: s.Filling, Hits: s.Hits,
		Misses: s.Misses, Evictions: s.Evictions, FillFailures: s.FillFailures, FilledBytes: s.FilledBytes, Uncached: s.Uncached}
}

func (a cacheAdmin) Entries() []api.CacheEntry {
	var out []api.CacheEntry
	for _, e := range a.c.List() {
		out = append(out, api.CacheEntry{Origin: e.Origin, Digest: e.Digest, Size: e.Size, MediaType: e.MediaType, LastUsed: e.LastUsed.UTC(), InUse: e.InUse})
	}
	return out
}

func (a cacheAdmin) Evict(ctx context.Context, digest string) error {
	switch _, err := a.c.EvictDigest(ctx, digest); {
	case errors.Is(err, cache.ErrInUse):
		return api.ErrCacheEntryInUse
	case errors.Is(err, cache.ErrNotFound):
		return fmt.Errorf("cache entry %s: %w", digest, store.ErrNotFound)
	default:
		return err
	}
}

func (a cacheAdmin) Warm(ctx context.Context, workspace, image string) (api.CacheWarmResult, error) {
	res, err := a.px.Warm(ctx, workspace, image)
	var we *proxy.WarmError
	if errors.As(err, &we) {
		return api.CacheWarmResult{}, &api.CacheError{Status: we.Status, Msg: we.Msg}
	}
	if err != nil {
		return api.CacheWarmResult{}, err
	}
	out := api.CacheWarmResult{Image: res.Image, Digest: res.Digest, Entries: []api.CacheWarmed{}}
	for _, e := range res.Entries {
		out.Entries = append(out.Entries, api.CacheWarmed{Digest: e.Digest, Kind: e.Kind, Size: e.Size, Cached: e.Cached})
	}
	return out, nil
}

// parseSize reads a byte size: a number with an optional unit (B, KiB,
// MiB, GiB, TiB, or K, M, G, T as powers of 1024; KB, MB, GB, TB as
// powers of 1000).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || f < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, e.g. 20GiB or 512MiB", s)
	}
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KI": 1 << 10, "KIB": 1 << 10, "KB": 1e3,
		"M": 1 << 20, "MI": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GI": 1 << 30, "GIB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TI": 1 << 40, "TIB": 1 << 40, "TB": 1e12}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	v := f * mult
	if v > 1<<62 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}
