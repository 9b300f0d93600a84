package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

// auditPage is the page size of audit queries.
const auditPage = 1000

func newAuditCmd(g *globals) *cobra.Command {
	var (
		ws, install, since string
		narrow             AuditQuery
		follow, refused    bool
		limit              int
		interval           time.Duration
	)
	c := &cobra.Command{
		Use:   "audit [--workspace W] [--install I] [--since 1h] [--refused] [--follow]",
		Short: "Show the audit trail of proxied and refused pulls",
		Long: `Show the audit trail: one event per proxied manifest or blob request, oldest
first, with workspace, install, node, client, upstream, repository,
reference, status, bytes, duration and, for a refused request, why.

Refused pulls (bad, expired or revoked tokens, disabled credentials,
repositories outside the allow-list) have a REASON. Beyond a few per
install and reason a minute they are aggregated into one event, shown as
"reason x N"; tokens that do not verify at all are aggregated per reason.
--refused shows only refused requests. The hub deletes events older than
its --audit-retention (90 days by default).

NODE is the node's name as it enrolled (its id once the node is deleted).
The hub writes events in batches; each query first writes what is queued,
so a pull that has just ended is in the answer. Refused requests counted
into an aggregate appear when their minute ends.

--since takes a duration back from now (30m, 24h) or an RFC 3339 time;
"all" shows everything. --follow keeps polling (every second) and prints
new events as they arrive, until interrupted. In -o json mode a plain
query prints one JSON array; --follow prints one JSON object per line.`,
		Example: `  pullgate-hub audit -w acme --since 1h
  pullgate-hub audit -w acme --install web --follow
  pullgate-hub audit --refused --since 24h
  pullgate-hub audit -w acme --repository org/app --status 4xx --since 24h --until 1h
  pullgate-hub audit --since 2026-01-02T15:00:00Z -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if since == "all" || since == "0" {
				since = ""
			}
			if limit < 0 {
				return usageErrorf("--limit %d: must not be negative", limit)
			}
			if interval <= 0 {
				return usageErrorf("--poll-interval %v: must be positive", interval)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			a := &auditPrinter{s: s, follow: follow}
			q := narrow
			q.Workspace, q.Install, q.Since, q.Refused = ws, install, since, refused
			ctx := cmd.Context()
			if !follow {
				evs, err := fetchAudit(ctx, s.c, q, limit)
				if err != nil {
					return err
				}
				return a.print(evs)
			}
			return followAudit(ctx, s, a, q, interval)
		},
	}
	f := c.Flags()
	f.StringVarP(&ws, "workspace", "w", "", "only events of this workspace (default: all)")
	f.StringVar(&install, "install", "", "only events of this install")
	f.StringVar(&since, "since", "1h", `only events since a duration ago or an RFC 3339 time ("all": no limit)`)
	f.StringVar(&narrow.Repository, "repository", "", "only events of this repository (as shown: org/app)")
	f.StringVar(&narrow.Upstream, "upstream", "", "only events of this upstream host")
	f.StringVar(&narrow.Node, "node", "", "only events of this node (its id, node_...)")
	f.StringVar(&narrow.Status, "status", "", "only events with this status (404) or class (4xx)")
	f.StringVar(&narrow.Until, "until", "", "only events before a duration ago or an RFC 3339 time")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	f.BoolVar(&refused, "refused", false, "only refused requests (bad, expired or revoked tokens, denied repositories)")
	f.IntVar(&limit, "limit", 10000, "at most this many events (without --follow; 0: no limit)")
	f.DurationVar(&interval, "poll-interval", time.Second, "how often --follow polls")
	_ = f.MarkHidden("poll-interval")
	return c
}

// fetchAudit pages through the events matching q, up to limit (0: all).
func fetchAudit(ctx context.Context, c *Client, q AuditQuery, limit int) ([]api.AuditEvent, error) {
	var out []api.AuditEvent
	for {
		q.Limit = auditPage
		if limit > 0 {
			q.Limit = min(auditPage, limit-len(out))
		}
		evs, err := c.Audit(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if len(evs) < q.Limit || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		q.After = evs[len(evs)-1].ID
	}
}

// followAudit prints what matches q, then polls for newer events until ctx
// ends. Transient failures (hub restarting) are reported and retried;
// refusals (4xx) end the command.
func followAudit(ctx context.Context, s *session, a *auditPrinter, q AuditQuery, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var warned bool
	for {
		evs, err := fetchAudit(ctx, s.c, q, 0)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			var ae *APIError
			if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 {
				return err
			}
			if !warned {
				fmt.Fprintf(s.err, "warning: %v (retrying)\n", err)
				warned = true
			}
		default:
			warned = false
			if err := a.print(evs); err != nil {
				return err
			}
			if len(evs) > 0 {
				q.After = evs[len(evs)-1].ID
				// Later polls ask by id only: since would cut events that
				// arrive with an older timestamp.
				q.Since = ""
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type auditPrinter struct {
	s       *session
	follow  bool
	printed bool // header printed
	// widths of the columns under --follow: each poll prints on its own,
	// so the columns keep the widths of what was printed before (and of
	// auditMinWidths). A longer value widens its column and the header is
	// printed again above it: every row lines up with the header above.
	widths []int
}

var auditHeader = []string{"TIME", "WORKSPACE", "INSTALL", "NODE", "CLIENT", "UPSTREAM", "REPOSITORY", "REFERENCE", "KIND", "STATUS", "BYTES", "DURATION", "CACHE", "REASON"}

// auditMinWidths are --follow's starting widths: enough for typical
// values, so that later rows rarely need more than the first ones.
var auditMinWidths = []int{23, 10, 10, 12, 15, 12, 16, 12, 8, 16, 8, 8, 5, 0}

func auditRow(e api.AuditEvent) []string {
	node := e.NodeName
	if node == "" {
		node = e.Node // deleted since: its id is all there is
	}
	return []string{e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Workspace, dash(e.Install), dash(node), dash(e.ClientAddr),
		e.Upstream, e.Repository, dash(e.Reference), e.Kind, strconv.Itoa(e.Status) + " " + http.StatusText(e.Status),
		strconv.FormatInt(e.Bytes, 10), (time.Duration(e.DurationMS) * time.Millisecond).String(), dash(e.Cache), reason(e)}
}

// printFixed prints rows padded to a.widths, widened first to fit them
// (with the header again when a column widens after the first print).
func (a *auditPrinter) printFixed(rows [][]string) error {
	first := a.widths == nil
	if first {
		a.widths = append([]int(nil), auditMinWidths...)
	}
	widened := false
	for _, r := range rows {
		for i, c := range r[:len(r)-1] { // the last column is not padded
			if n := utf8.RuneCountInString(c); n > a.widths[i] {
				a.widths[i], widened = n, true
			}
		}
	}
	if widened && !first {
		rows = append([][]string{auditHeader}, rows...)
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			c = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", a.widths[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(a.s.out, b.String())
	return err
}

func (a *auditPrinter) print(evs []api.AuditEvent) error {
	s := a.s
	if s.json {
		if !a.follow {
			if evs == nil {
				evs = []api.AuditEvent{}
			}
			return s.printJSON(evs)
		}
		enc := json.NewEncoder(s.out)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(evs) == 0 && (a.printed || a.follow) {
		return nil
	}
	var rows [][]string
	if !a.printed {
		rows = append(rows, append([]string(nil), auditHeader...))
		a.printed = true
	}
	for _, e := range evs {
		rows = append(rows, auditRow(e))
	}
	if a.follow {
		return a.printFixed(rows)
	}
	t := newTable(s.out)
	for _, r := range rows {
		t.row(r...)
	}
	return t.flush()
}

// reason is the REASON column: why a request was refused, and how many
// requests an aggregated event stands for.
func reason(e api.AuditEvent) string {
	if e.Reason == "" {
		return "-"
	}
	if e.Count > 1 {
		return e.Reason + " x " + strconv.FormatInt(e.Count, 10)
	}
	return e.Reason
}
