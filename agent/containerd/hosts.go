// Package containerd keeps containerd's registry host configuration
// (`hosts.toml` under the CRI plugin's `config_path`) in step with the
// upstream hosts the node's installs use, so that images keep their
// upstream names (`registry.corp/org/app`) and containerd pulls them
// through the pullgate hub.
//
// Each managed file names the hub as containerd's only host for that
// upstream:
//
//	server = "https://hub.example.com/v2"
//	override_path = true
//	capabilities = ["pull", "resolve"]
//
// containerd then sends `GET https://hub.example.com/v2/<repo>/manifests/<ref>?ns=<upstream>`
// with the credentials the kubelet passed over CRI (the install token).
// There is no `[host]` entry and `server` is the hub: containerd appends
// `server` as the last host to try, and when it is empty falls back to
// the upstream itself, which would offer the install token to the
// upstream. So the hub is the only host, on purpose without fallback.
//
// Files this package writes start with Marker. It never touches a
// `hosts.toml` it did not write (an operator's own file for a host is
// left alone and reported), removes its own files (and their directory,
// when empty) for hosts no longer in use, writes atomically (temporary
// file and rename, mode 0644), and restores its files when they are
// edited or deleted (fsnotify).
package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pullgate/pullgate/internal/atomicfile"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// FileName is containerd's per-host configuration file.
const FileName = "hosts.toml"

// Marker starts every file this package writes; files without it are
// never changed or removed (unless this process wrote them).
const Marker = "# managed by pullgate-agent"

// tmpPrefix names temporary files (ignored by the watcher).
const tmpPrefix = ".pullgate-"

// Mirrors manages the hosts.toml files in one config_path directory.
type Mirrors struct {
	dir      string
	server   string
	ca       string
	log      *slog.Logger
	debounce time.Duration
	managed  prometheus.Gauge
	restores prometheus.Counter

	grace time.Duration
	now   func() time.Time
	hold  func(host string) time.Time

	mu      sync.Mutex
	want    map[string][]byte    // host → file content; nil until the first Set
	leftAt  map[string]time.Time // hosts the hub stopped listing, kept until leftAt+grace
	owned   map[string]bool      // hosts whose file this process wrote
	foreign map[string]bool      // hosts with an operator's own file (reported once)
	watcher *fsnotify.Watcher
	watched map[string]bool
}

// Option configures New.
type Option func(*Mirrors)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(m *Mirrors) { m.log = l } }

// WithHubCA names a CA certificate file for the hub's TLS certificate
// (containerd's `ca` setting), for a hub whose certificate the node does
// not trust by default.
func WithHubCA(path string) Option { return func(m *Mirrors) { m.ca = path } }

// WithMetrics reports the number of managed hosts and the files restored
// after someone edited or deleted them.
func WithMetrics(managed prometheus.Gauge, restores prometheus.Counter) Option {
	return func(m *Mirrors) { m.managed, m.restores = managed, restores }
}

// WithRemoveGrace keeps a mirror for this long after the hub stops listing
// its upstream (default 15 minutes: longer than an install token lives).
// The kubelet may still hold a token it was given for that upstream;
// removing the mirror at once would make containerd offer it to the real
// upstream instead of the hub.
func WithRemoveGrace(d time.Duration) Option { return func(m *Mirrors) { m.grace = d } }

// WithHold keeps a mirror the hub stopped listing, past the grace period,
// until hold(host): the expiry of the live tokens handed out for the host
// (the kubelet caches them; without the mirror containerd would send them
// to the upstream). Tokens revoked meanwhile do not count.
func WithHold(hold func(host string) time.Time) Option { return func(m *Mirrors) { m.hold = hold } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(m *Mirrors) { m.now = now } }

// DefaultRemoveGrace is the default of WithRemoveGrace.
const DefaultRemoveGrace = 15 * time.Minute

// WithDebounce sets how long the watcher waits for a burst of file events
// to settle before it checks the files (default 50ms).
func WithDebounce(d time.Duration) Option { return func(m *Mirrors) { m.debounce = d } }

// New checks the configuration. dir is containerd's registry config_path
// (e.g. /etc/containerd/certs.d); hubURL is the hub's URL as this node
// reaches it (https://hub.example.com).
func New(dir, hubURL string, opts ...Option) (*Mirrors, error) {
	if dir == "" {
		return nil, errors.New("containerd config path: empty")
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("containerd config path %q: must be absolute", dir)
	}
	server, err := ServerURL(hubURL)
	if err != nil {
		return nil, err
	}
	m := &Mirrors{dir: filepath.Clean(dir), server: server, log: slog.Default(), debounce: 50 * time.Millisecond,
		grace: DefaultRemoveGrace, now: time.Now, leftAt: map[string]time.Time{},
		owned: map[string]bool{}, foreign: map[string]bool{}, watched: map[string]bool{}}
	for _, o := range opts {
		o(m)
	}
	if m.ca != "" && (!filepath.IsAbs(m.ca) || strings.ContainsAny(m.ca, "\"\\\n") || !tomlSafe(m.ca)) {
		return nil, fmt.Errorf("hub CA file %q: must be an absolute path without quotes, backslashes or control characters", m.ca)
	}
	return m, nil
}

// ServerURL validates the hub's URL and returns containerd's `server`
// value for it: the URL with "/v2" appended to its path.
func ServerURL(hubURL string) (string, error) {
	if hubURL == "" {
		return "", errors.New("the hub's URL is required (--hub-url), e.g. https://hub.example.com")
	}
	u, err := url.Parse(hubURL)
	if err != nil {
		return "", fmt.Errorf("hub URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("hub URL %q: want http:// or https://", hubURL)
	case u.Host == "":
		return "", fmt.Errorf("hub URL %q: no host", hubURL)
	case u.User != nil:
		return "", errors.New("hub URL: must not contain user info")
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("hub URL %q: must not have a query or fragment", hubURL)
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	p = strings.TrimSuffix(p, "/v2")
	s := u.Scheme + "://" + u.Host + p + "/v2"
	if strings.ContainsAny(s, "\"\\ \t\n") || !tomlSafe(s) {
		return "", fmt.Errorf("hub URL %q: unexpected characters", hubURL)
	}
	return s, nil
}

// tomlSafe reports whether Render's %q quoting of s is a TOML basic
// string of the same value: valid UTF-8 without ASCII control characters
// (Go would write those as \x.. escapes, which TOML 1.0 lacks and newer
// parsers read as another character).
func tomlSafe(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Dir is the config_path directory.
func (m *Mirrors) Dir() string { return m.dir }

// Path is the hosts.toml path of an upstream host.
func (m *Mirrors) Path(host string) string { return filepath.Join(m.dir, host, FileName) }

// Render is the file for host.
func (m *Mirrors) Render(host string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: pulls of %s go to the pullgate hub only (no fallback to the upstream).\n", Marker, host)
	fmt.Fprintf(&b, "# Rewritten from the hub's state, restored if edited, removed when no install of\n")
	fmt.Fprintf(&b, "# this node's cluster uses %s. Do not edit.\n", host)
	fmt.Fprintf(&b, "server = %q\n", m.server)
	b.WriteString("override_path = true\n")
	b.WriteString("capabilities = [\"pull\", \"resolve\"]\n")
	if m.ca != "" {
		fmt.Fprintf(&b, "ca = %q\n", m.ca)
	}
	return b.Bytes()
}

// Hosts returns the hosts currently managed, sorted.
func (m *Mirrors) Hosts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.want))
	for h := range m.want {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// Routes reports whether containerd sends pulls of host to the hub: a
// hosts.toml this process wrote is in place for it with the content it
// wrote (the hub listed the host, or stopped listing it less than the
// grace period ago). False before the first Set, for an operator's own
// file, and for a managed file someone edited or deleted (until the
// watcher restores it).
func (m *Mirrors) Routes(host string) bool {
	if !m.listed(host) {
		return false
	}
	// The file is read outside the lock: Set and the watcher go on.
	cur, err := os.ReadFile(m.Path(host))
	return err == nil && bytes.Equal(cur, m.Render(host))
}

// listed reports whether this process keeps a mirror for host: written by
// it, and listed by the hub or within its grace period or hold.
func (m *Mirrors) listed(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.owned[host] {
		return false
	}
	if _, ok := m.want[host]; ok {
		return true
	}
	t, left := m.leftAt[host]
	return left && m.keptLocked(host, t)
}

// Set makes the directory hold a managed hosts.toml for exactly these
// upstream hosts: missing or changed files are written, managed files of
// other hosts are removed. Invalid host names are skipped and reported.
func (m *Mirrors) Set(hosts []string) error {
	want := map[string][]byte{}
	var errs []error
	for _, h := range hosts {
		c, err := checkHost(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want[c] = m.Render(c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for h := range m.want {
		if want[h] == nil && m.leftAt[h].IsZero() {
			m.leftAt[h] = now
		}
	}
	for h := range want {
		delete(m.leftAt, h)
	}
	m.want = want
	if err := m.reconcileLocked(false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkHost accepts canonical registry hosts only: a host name or IP with
// an optional port, so the directory name cannot escape config_path or
// name containerd's "_default".
func checkHost(h string) (string, error) {
	c, err := imageref.Host(h, imageref.Exact())
	if err != nil {
		return "", fmt.Errorf("mirror host: %w", err)
	}
	if strings.ContainsAny(c, "/\\") || strings.HasPrefix(c, ".") {
		return "", fmt.Errorf("mirror host %q: not a canonical registry host", h)
	}
	return c, nil
}

// reconcileLocked writes what is missing or differs and removes managed
// files of hosts no longer wanted. restoring says the call comes from the
// watcher (differences are someone else's edits).
func (m *Mirrors) reconcileLocked(restoring bool) error {
	if m.want == nil {
		return nil // not synced with the hub yet: leave everything as it is
	}
	keep := m.keepLocked()
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("containerd config path: %w", err)
	}
	var errs []error
	for _, host := range sortedHosts(keep) {
		content := keep[host]
		path := m.Path(host)
		cur, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.Equal(cur, content):
			m.owned[host] = true
			continue
		case err == nil && !m.owned[host] && !bytes.HasPrefix(cur, []byte(Marker)):
			if !m.foreign[host] {
				m.foreign[host] = true
				m.log.Error("containerd already has a hosts.toml for this upstream that pullgate-agent did not write; "+
					"leaving it alone, so pulls of this host do not go through the hub as configured here",
					"host", host, "file", path)
			}
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("read %s: %w", path, err))
			continue
		}
		existed := err == nil
		if err := writeAtomic(path, content); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(m.foreign, host)
		switch {
		case restoring || m.owned[host]:
			// What this process wrote for a host never changes, so a
			// difference is someone's edit or deletion.
			m.log.Warn("restored containerd mirror configuration that was edited or deleted", "host", host, "file", path)
			if m.restores != nil {
				m.restores.Inc()
			}
		case existed:
			m.log.Info("updated containerd mirror configuration", "host", host, "file", path, "server", m.server)
		default:
			m.log.Info("wrote containerd mirror configuration", "host", host, "file", path, "server", m.server)
		}
		m.owned[host] = true
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("containerd config path: %w", err))
	}
	for _, e := range entries {
		host := e.Name()
		if !e.IsDir() || keep[host] != nil {
			continue
		}
		path := filepath.Join(m.dir, host, FileName)
		cur, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(cur, []byte(Marker)) {
			continue // not ours
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removeTemps(filepath.Join(m.dir, host))
		dirGone := os.Remove(filepath.Join(m.dir, host)) == nil // only when empty
		delete(m.owned, host)
		m.log.Info("removed containerd mirror configuration: no install uses this upstream any more",
			"host", host, "file", path, "directory_removed", dirGone)
	}
	for h := range m.owned {
		if keep[h] == nil {
			delete(m.owned, h)
		}
	}
	for h := range m.foreign {
		if keep[h] == nil {
			delete(m.foreign, h) // reported again if the host comes back
		}
	}
	if m.managed != nil {
		m.managed.Set(float64(len(m.owned)))
	}
	m.watchLocked()
	return errors.Join(errs...)
}

// keepLocked is what the directory should hold: the hosts the hub lists,
// and those it stopped listing less than the grace period ago.
func (m *Mirrors) keepLocked() map[string][]byte {
	keep := make(map[string][]byte, len(m.want)+len(m.leftAt))
	for h, c := range m.want {
		keep[h] = c
	}
	for h, t := range m.leftAt {
		if m.keptLocked(h, t) {
			keep[h] = m.Render(h)
		} else {
			delete(m.leftAt, h)
		}
	}
	return keep
}

// keptLocked: a host the hub stopped listing at left keeps its mirror for
// the grace period, and while tokens handed out for it live (WithHold).
func (m *Mirrors) keptLocked(host string, left time.Time) bool {
	now := m.now()
	return now.Sub(left) < m.grace || (m.hold != nil && now.Before(m.hold(host)))
}

func sortedHosts(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// writeAtomic writes content to path through a temporary file in the same
// directory and a rename, so containerd never reads a partial file.
func writeAtomic(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, bytes.NewReader(content), 0o644, atomicfile.TempPattern(tmpPrefix+"*.tmp"))
}

func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// watchLocked watches config_path and the directory of every managed
// host (fsnotify is not recursive).
func (m *Mirrors) watchLocked() {
	if m.watcher == nil {
		return
	}
	want := map[string]bool{m.dir: true}
	for h := range m.owned {
		if m.owned[h] {
			want[filepath.Join(m.dir, h)] = true
		}
	}
	for p := range m.watched {
		if !want[p] {
			_ = m.watcher.Remove(p)
			delete(m.watched, p)
		}
	}
	for p := range want {
		// Adding again is cheap and re-arms a watch that a deleted and
		// re-created directory lost.
		if err := m.watcher.Add(p); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				m.log.Warn("cannot watch containerd mirror configuration", "path", p, "err", err)
			}
			delete(m.watched, p)
			continue
		}
		m.watched[p] = true
	}
}

// Run watches the directory and restores managed files that are edited or
// deleted, until ctx ends.
func (m *Mirrors) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch containerd config path: %w", err)
	}
	defer w.Close()
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("containerd config path: %w", err)
	}
	m.mu.Lock()
	m.watcher = w
	if err := m.reconcileLocked(false); err != nil {
		m.log.Warn("containerd mirror configuration", "err", err)
	}
	m.watchLocked()
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.watcher = nil
		m.watched = map[string]bool{}
		m.mu.Unlock()
	}()

	var timer <-chan time.Time
	// Mirrors past their grace period go on this tick.
	tick := time.NewTicker(max(min(m.grace/4, time.Minute), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.mu.Lock()
			if len(m.leftAt) > 0 {
				if err := m.reconcileLocked(false); err != nil {
					m.log.Warn("containerd mirror configuration", "err", err)
				}
			}
			m.mu.Unlock()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if strings.HasPrefix(filepath.Base(ev.Name), tmpPrefix) || ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.After(m.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			m.log.Warn("watching containerd mirror configuration", "err", err)
			if timer == nil {
				timer = time.After(m.debounce)
			}
		case <-timer:
			timer = nil
			m.mu.Lock()
			if err := m.reconcileLocked(true); err != nil {
				m.log.Warn("containerd mirror configuration", "err", err)
			}
			m.mu.Unlock()
		}
	}
}
