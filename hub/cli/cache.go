package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

func newCacheCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "cache",
		Short: "Inspect, evict and warm the hub's pull-through cache",
		Long: `The hub caches blobs and manifests it pulls (serve --cache-size, --cache off).
A cached entry is served to an install only after the upstream confirmed,
with that install's own registry credential, that the repository has it.`,
		Args: noArgs,
		RunE: missingSubcommand,
	}
	stats := &cobra.Command{
		Use:     "stats",
		Short:   "Show the cache's size, cap and counters",
		Example: "  pullgate-hub cache stats\n  pullgate-hub cache stats -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			st, err := s.c.CacheStats(cmd.Context())
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(st)
			}
			t := newTable(s.out, "ENTRIES", "BYTES", "MAX_BYTES", "FILLING", "HITS", "MISSES", "EVICTIONS", "FILL_FAILURES", "FILLED_BYTES", "UNCACHED")
			t.row(strconv.Itoa(st.Entries), strconv.FormatInt(st.Bytes, 10), strconv.FormatInt(st.MaxBytes, 10), strconv.Itoa(st.Filling),
				strconv.FormatInt(st.Hits, 10), strconv.FormatInt(st.Misses, 10), strconv.FormatInt(st.Evictions, 10),
				strconv.FormatInt(st.FillFailures, 10), strconv.FormatInt(st.FilledBytes, 10), strconv.FormatInt(st.Uncached, 10))
			return t.flush()
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List cache entries, most recently used first",
		Example: "  pullgate-hub cache list\n  pullgate-hub cache list -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			es, err := s.c.CacheEntries(cmd.Context())
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(es)
			}
			t := newTable(s.out, "ORIGIN", "DIGEST", "SIZE", "MEDIA TYPE", "LAST USED", "IN USE")
			for _, e := range es {
				t.row(e.Origin, e.Digest, strconv.FormatInt(e.Size, 10), dash(e.MediaType), fmtTime(e.LastUsed), strconv.Itoa(e.InUse))
			}
			return t.flush()
		},
	}
	evict := &cobra.Command{
		Use:     "evict DIGEST...",
		Short:   "Remove entries from the cache",
		Long:    "Remove entries from the cache now. An entry being read or written is not\nevicted (the command fails for it; try again).",
		Example: "  pullgate-hub cache evict sha256:0123...",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s wants at least one DIGEST", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			for _, d := range args {
				if err := s.c.EvictCacheEntry(cmd.Context(), d); err != nil {
					return err
				}
				if err := s.say(nil, "evicted %s", d); err != nil {
					return err
				}
			}
			return nil
		},
	}
	var ws string
	warm := &cobra.Command{
		Use:   "warm -w WORKSPACE IMAGE...",
		Short: "Pull images into the cache before a rollout",
		Long: `Pull images into the cache with the workspace's registry credential for
each: the manifest (every manifest of a multi-platform index) and every blob
they name. Installs pulling them later are served from the cache after the
upstream confirms their own credential with a HEAD.

Images are full references: host/repository:tag or host/repository@digest.
Large images take a while: raise --timeout (0: none).`,
		Example: `  pullgate-hub cache warm -w acme ghcr.io/acme/web:v2 ghcr.io/acme/worker:v2
  pullgate-hub --timeout 30m cache warm -w acme docker.io/library/postgres:17`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s wants at least one IMAGE", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace"); err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			res, err := s.c.WarmCache(cmd.Context(), api.CacheWarmRequest{Workspace: ws, Images: args})
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(res)
			}
			t := newTable(s.out, "IMAGE", "DIGEST", "KIND", "SIZE", "ALREADY CACHED")
			for _, r := range res.Results {
				for _, e := range r.Entries {
					t.row(r.Image, e.Digest, e.Kind, strconv.FormatInt(e.Size, 10), strconv.FormatBool(e.Cached))
				}
			}
			return t.flush()
		},
	}
	addWorkspaceFlag(warm, &ws)
	root.AddCommand(stats, list, evict, warm)
	return root
}

// CacheStats reads the cache's counters.
func (c *Client) CacheStats(ctx context.Context) (api.CacheStats, error) {
	var out api.CacheStats
	if err := c.do(ctx, http.MethodGet, "/api/v1/cache", nil, nil, &out); err != nil {
		return out, fmt.Errorf("cache stats: %w", err)
	}
	return out, nil
}

// CacheEntries lists the cache's entries.
func (c *Client) CacheEntries(ctx context.Context) ([]api.CacheEntry, error) {
	var out api.CacheEntries
	if err := c.do(ctx, http.MethodGet, "/api/v1/cache/entries", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list cache entries: %w", err)
	}
	return out.Entries, nil
}

// EvictCacheEntry removes one entry.
func (c *Client) EvictCacheEntry(ctx context.Context, digest string) error {
	if err := c.do(ctx, http.MethodDelete, "/api/v1/cache/entries/"+url.PathEscape(digest), nil, nil, nil); err != nil {
		return fmt.Errorf("evict %s: %w", digest, err)
	}
	return nil
}

// WarmCache pulls images into the cache.
func (c *Client) WarmCache(ctx context.Context, req api.CacheWarmRequest) (api.CacheWarmResults, error) {
	var out api.CacheWarmResults
	if err := c.do(ctx, http.MethodPost, "/api/v1/cache/warm", nil, req, &out); err != nil {
		return out, fmt.Errorf("warm cache: %w", err)
	}
	return out, nil
}
