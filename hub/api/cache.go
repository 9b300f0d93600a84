package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CacheAdmin is the hub's pull-through cache as the API manages it.
type CacheAdmin interface {
	Stats() CacheStats
	Entries() []CacheEntry
	// Evict removes a digest's entries (of every origin); ErrCacheEntryInUse while it is read or
	// written, a store.ErrNotFound-wrapping error when unknown.
	Evict(ctx context.Context, digest string) error
	// Warm pulls one image into the cache with the workspace's credential.
	Warm(ctx context.Context, workspace, image string) (CacheWarmResult, error)
}

// ErrCacheEntryInUse is Evict's answer for an entry being read or written.
var ErrCacheEntryInUse = errors.New("cache entry in use")

// CacheError is an error the operator can act on (a bad image reference,
// an upstream that refused), answered with Status and its message.
type CacheError struct {
	Status int
	Msg    string
}

func (e *CacheError) Error() string { return e.Msg }

// CacheStats is GET /api/v1/cache.
type CacheStats struct {
	Entries      int   `json:"entries"`
	Bytes        int64 `json:"bytes"`
	MaxBytes     int64 `json:"max_bytes"`
	Filling      int   `json:"filling"`
	Hits         int64 `json:"hits"`
	Misses       int64 `json:"misses"`
	Evictions    int64 `json:"evictions"`
	FillFailures int64 `json:"fill_failures"`
	FilledBytes  int64 `json:"filled_bytes"`
	// Uncached counts fills streamed to their readers without being
	// cached (too large for the cap, or no room while others fill).
	Uncached int64 `json:"uncached"`
}

// CacheEntry is one committed entry.
type CacheEntry struct {
	// Origin is the upstream the entry was fetched from: entries are
	// shared only among pulls from the same upstream.
	Origin    string    `json:"origin"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"media_type,omitempty"`
	LastUsed  time.Time `json:"last_used"`
	InUse     int       `json:"in_use"`
}

// CacheEntries is GET /api/v1/cache/entries.
type CacheEntries struct {
	Entries []CacheEntry `json:"entries"`
}

// CacheWarmRequest is POST /api/v1/cache/warm.
type CacheWarmRequest struct {
	Workspace string   `json:"workspace"`
	Images    []string `json:"images"`
}

// CacheWarmed is one entry a warm fetched or found.
type CacheWarmed struct {
	Digest string `json:"digest"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	Cached bool   `json:"cached"`
}

// CacheWarmResult is what a warm did for one image.
type CacheWarmResult struct {
	Image   string        `json:"image"`
	Digest  string        `json:"digest"`
	Entries []CacheWarmed `json:"entries"`
}

// CacheWarmResults is the answer of POST /api/v1/cache/warm.
type CacheWarmResults struct {
	Results []CacheWarmResult `json:"results"`
}

// maxWarmImages bounds one warm request.
const maxWarmImages = 100

func (s *server) cacheAdmin() (CacheAdmin, error) {
	if s.d.Cache == nil {
		return nil, errorf(http.StatusNotImplemented, "this hub runs without a cache (serve --cache off)")
	}
	return s.d.Cache, nil
}

func (s *server) getCacheStats(w http.ResponseWriter, _ *http.Request) error {
	c, err := s.cacheAdmin()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.Stats())
	return nil
}

func (s *server) listCacheEntries(w http.ResponseWriter, _ *http.Request) error {
	c, err := s.cacheAdmin()
	if err != nil {
		return err
	}
	out := c.Entries()
	if out == nil {
		out = []CacheEntry{}
	}
	writeJSON(w, http.StatusOK, CacheEntries{Entries: out})
	return nil
}

func (s *server) evictCacheEntry(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cacheAdmin()
	if err != nil {
		return err
	}
	d := r.PathValue("digest")
	if _, err := v1.NewHash(d); err != nil {
		return badRequest("digest %q: want algorithm:hex, e.g. sha256:<64 hex digits>", shorten(d, 80))
	}
	switch err := c.Evict(r.Context(), d); {
	case errors.Is(err, ErrCacheEntryInUse):
		return errorf(http.StatusConflict, "cache entry %s is being read or written; try again", d)
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) warmCache(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cacheAdmin()
	if err != nil {
		return err
	}
	var req CacheWarmRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Workspace == "" {
		return badRequest("workspace is required")
	}
	if len(req.Images) == 0 || len(req.Images) > maxWarmImages {
		return badRequest("images: want 1 to %d image references, got %d", maxWarmImages, len(req.Images))
	}
	out := CacheWarmResults{Results: []CacheWarmResult{}}
	for _, img := range req.Images {
		res, err := c.Warm(r.Context(), req.Workspace, img)
		if err != nil {
			var ce *CacheError
			if errors.As(err, &ce) {
				return errorf(ce.Status, "warm %s: %s", shorten(img, 200), ce.Msg)
			}
			return err
		}
		out.Results = append(out.Results, res)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
