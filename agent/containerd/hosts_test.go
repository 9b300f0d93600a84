package containerd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newMirrors(t *testing.T, opts ...Option) *Mirrors {
	t.Helper()
	// No removal grace unless a test asks for one: most tests check that
	// unused mirrors go.
	m, err := New(filepath.Join(t.TempDir(), "certs.d"), "https://hub.example.com", append([]Option{
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithRemoveGrace(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func value(c prometheus.Metric) float64 {
	var m dto.Metric
	c.Write(&m)
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hub.example.com":             "https://hub.example.com/v2",
		"https://hub.example.com/":            "https://hub.example.com/v2",
		"https://hub.example.com/v2":          "https://hub.example.com/v2",
		"http://127.0.0.1:8080":               "http://127.0.0.1:8080/v2",
		"https://gw.example.com/pullgate/":    "https://gw.example.com/pullgate/v2",
		"https://gw.example.com:8443/pg/v2/":  "https://gw.example.com:8443/pg/v2",
		"https://[::1]:8443":                  "https://[::1]:8443/v2",
		"HTTPS://hub.example.com/with%20path": "https://hub.example.com/with%20path/v2",
	} {
		got, err := ServerURL(in)
		if err != nil || got != want {
			t.Errorf("ServerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "hub.example.com", "ftp://hub", "https://", "https://u:p@hub.example.com",
		"https://hub.example.com/?x=1", "https://hub.example.com/#f", "unix:///run/x.sock"} {
		if got, err := ServerURL(in); err == nil {
			t.Errorf("ServerURL(%q) = %q, want an error", in, got)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("error echoes user info: %v", err)
		}
	}
	if _, err := New("relative/certs.d", "https://hub"); err == nil {
		t.Error("relative config path accepted")
	}
	if _, err := New("/etc/containerd/certs.d", "https://hub", WithHubCA("ca.pem")); err == nil {
		t.Error("relative CA path accepted")
	}
}

func TestRender(t *testing.T) {
	m := newMirrors(t, WithHubCA("/etc/pullgate/hub-ca.pem"))
	got := string(m.Render("registry.corp"))
	for _, want := range []string{
		Marker + ": pulls of registry.corp go to the pullgate hub only",
		"\nserver = \"https://hub.example.com/v2\"\n",
		"\noverride_path = true\n",
		"\ncapabilities = [\"pull\", \"resolve\"]\n",
		"\nca = \"/etc/pullgate/hub-ca.pem\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts.toml lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, Marker) {
		t.Error("file does not start with the marker")
	}
	// The hub is the only host: no [host] tables that containerd would try
	// before, and no server that is not the hub.
	if strings.Contains(got, "[host") || strings.Count(got, "server") != 1 {
		t.Errorf("unexpected hosts:\n%s", got)
	}
}

func TestSetWritesUpdatesRemoves(t *testing.T) {
	managed := prometheus.NewGauge(prometheus.GaugeOpts{Name: "m"})
	m := newMirrors(t, WithMetrics(managed, prometheus.NewCounter(prometheus.CounterOpts{Name: "r"})))
	if err := m.Set([]string{"registry-a.corp", "registry-b.corp", "docker.io", "127.0.0.1:5000"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"registry-a.corp", "registry-b.corp", "docker.io", "127.0.0.1:5000"} {
		fi, err := os.Stat(m.Path(h))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", h, fi.Mode().Perm())
		}
		if got := read(t, m.Path(h)); got != string(m.Render(h)) {
			t.Errorf("%s: content\n%s", h, got)
		}
	}
	if got := value(managed); got != 4 {
		t.Errorf("managed gauge %v", got)
	}
	if got := strings.Join(m.Hosts(), ","); got != "127.0.0.1:5000,docker.io,registry-a.corp,registry-b.corp" {
		t.Errorf("hosts %s", got)
	}
	before, _ := os.Stat(m.Path("registry-a.corp"))

	// Same set again: nothing is rewritten.
	time.Sleep(10 * time.Millisecond)
	if err := m.Set([]string{"registry-a.corp", "registry-b.corp", "docker.io", "127.0.0.1:5000"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(m.Path("registry-a.corp")); !after.ModTime().Equal(before.ModTime()) {
		t.Error("unchanged file was rewritten")
	}

	// A host no longer used: its file and (empty) directory go.
	if err := m.Set([]string{"registry-a.corp", "docker.io"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"registry-b.corp", "127.0.0.1:5000"} {
		if exists(filepath.Join(m.Dir(), h)) {
			t.Errorf("%s: directory not removed", h)
		}
	}
	if !exists(m.Path("registry-a.corp")) || !exists(m.Path("docker.io")) {
		t.Error("a wanted file was removed")
	}
	// A managed directory with other files in it (CA certificates):
	// only hosts.toml goes.
	os.WriteFile(filepath.Join(m.Dir(), "docker.io", "ca.crt"), []byte("cert"), 0o644)
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if exists(m.Path("docker.io")) || !exists(filepath.Join(m.Dir(), "docker.io", "ca.crt")) {
		t.Error("removing docker.io: want hosts.toml gone and ca.crt kept")
	}
	if exists(filepath.Join(m.Dir(), "registry-a.corp")) || !exists(m.Dir()) {
		t.Error("after Set(nil): want host directories gone and config_path kept")
	}
	if got := value(managed); got != 0 {
		t.Errorf("managed gauge %v", got)
	}
	// No temporary files are left behind.
	filepath.WalkDir(m.Dir(), func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), tmpPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestForeignFilesUntouched(t *testing.T) {
	m := newMirrors(t)
	foreign := map[string]string{
		// The operator's own mirror for a host the hub also lists.
		filepath.Join(m.Dir(), "registry-a.corp", FileName): "server = \"https://mirror.internal\"\n",
		// The operator's own configuration for another host.
		filepath.Join(m.Dir(), "quay.io", FileName): "server = \"https://quay.io\"\n",
		// containerd's fallback for every host.
		filepath.Join(m.Dir(), "_default", FileName): "server = \"https://fallback.internal\"\n",
		// Certificates only, no hosts.toml.
		filepath.Join(m.Dir(), "registry.certs", "ca.crt"): "cert",
		// A file directly in config_path.
		filepath.Join(m.Dir(), "README"): "notes",
	}
	for p, c := range foreign {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func() {
		t.Helper()
		for p, c := range foreign {
			if got, err := os.ReadFile(p); err != nil || string(got) != c {
				t.Errorf("%s changed: %q %v", p, got, err)
			}
		}
	}
	if err := m.Set([]string{"registry-a.corp", "registry-b.corp", "quay.io"}); err != nil {
		t.Fatal(err)
	}
	check()
	if read(t, m.Path("registry-b.corp")) != string(m.Render("registry-b.corp")) {
		t.Error("registry-b.corp not written")
	}
	// Hosts that would escape config_path or name containerd's fallback
	// are refused.
	err := m.Set([]string{"../etc", "_default", "Registry-B.corp", "a/b", "registry-b.corp"})
	if err == nil {
		t.Fatal("invalid hosts accepted")
	}
	check()
	if exists(filepath.Join(filepath.Dir(m.Dir()), "etc")) {
		t.Error("wrote outside config_path")
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	check()
	if exists(filepath.Join(m.Dir(), "registry-b.corp")) {
		t.Error("managed registry-b.corp not removed")
	}
	// Once the operator removes their own file, the agent manages the host.
	os.Remove(m.Path("registry-a.corp"))
	delete(foreign, m.Path("registry-a.corp"))
	if err := m.Set([]string{"registry-a.corp"}); err != nil {
		t.Fatal(err)
	}
	if read(t, m.Path("registry-a.corp")) != string(m.Render("registry-a.corp")) {
		t.Error("registry-a.corp not written after the operator's file went")
	}
	check()
}

// Files of a previous run are kept until the first Set (the hub's state
// is not known before), then the ones no longer used are removed.
func TestPreviousRun(t *testing.T) {
	m := newMirrors(t)
	if err := m.Set([]string{"old.corp", "kept.corp"}); err != nil {
		t.Fatal(err)
	}
	m2, _ := New(m.Dir(), "https://hub.example.com", WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithRemoveGrace(0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m2.Run(ctx); close(done) }()
	time.Sleep(100 * time.Millisecond)
	if !exists(m.Path("old.corp")) || !exists(m.Path("kept.corp")) {
		t.Fatal("files removed before the first Set")
	}
	if err := m2.Set([]string{"kept.corp"}); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(m.Dir(), "old.corp")) || !exists(m.Path("kept.corp")) {
		t.Fatal("previous run's unused file not removed, or a used one removed")
	}
	cancel()
	<-done
}

func TestRestoreAfterHandEdit(t *testing.T) {
	restores := prometheus.NewCounter(prometheus.CounterOpts{Name: "r"})
	m := newMirrors(t, WithMetrics(prometheus.NewGauge(prometheus.GaugeOpts{Name: "m"}), restores), WithDebounce(10*time.Millisecond), WithLogger(slog.New(slog.NewTextHandler(tlog{t}, nil))))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := m.Set([]string{"registry-a.corp", "registry-b.corp"}); err != nil {
		t.Fatal(err)
	}
	want := string(m.Render("registry-a.corp"))
	waitRestored := func(what string) {
		t.Helper()
		t.Log("step:", what)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(m.Path("registry-a.corp")); err == nil && string(b) == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s: not restored within 5s", what)
	}
	// Wait until the watch is armed on the host directory.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		armed := m.watched[filepath.Join(m.Dir(), "registry-a.corp")]
		m.mu.Unlock()
		if armed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch not armed")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// An edit in place (fallback to the upstream added).
	edited := want + "\n[host.\"https://registry-a.corp\"]\n  capabilities = [\"pull\"]\n"
	if err := os.WriteFile(m.Path("registry-a.corp"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	waitRestored("edit in place")
	// An editor's save: a new file renamed over it, without the marker.
	tmp := filepath.Join(m.Dir(), "registry-a.corp", "hosts.toml~")
	os.WriteFile(tmp, []byte("server = \"https://registry-a.corp\"\n"), 0o644)
	os.Rename(tmp, m.Path("registry-a.corp"))
	waitRestored("rename over")
	// The file deleted.
	os.Remove(m.Path("registry-a.corp"))
	waitRestored("file deleted")
	// The whole directory deleted.
	os.RemoveAll(filepath.Join(m.Dir(), "registry-a.corp"))
	waitRestored("directory deleted")
	// ... and edited again after that (the watch was re-armed).
	os.WriteFile(m.Path("registry-a.corp"), []byte("# hand edit\n"), 0o644)
	waitRestored("edit after re-creation")
	// (The counter is increased right after the rename the loop above saw.)
	for deadline := time.Now().Add(2 * time.Second); value(restores) < 5 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := value(restores); n < 5 {
		t.Errorf("restores counted: %v, want >= 5", n)
	}
	// The other host was never touched.
	if read(t, m.Path("registry-b.corp")) != string(m.Render("registry-b.corp")) {
		t.Error("registry-b.corp changed")
	}
	// Operator files next to managed ones do not cause rewrites of theirs.
	other := filepath.Join(m.Dir(), "quay.io", FileName)
	os.MkdirAll(filepath.Dir(other), 0o755)
	os.WriteFile(other, []byte("server = \"https://quay.io\"\n"), 0o644)
	time.Sleep(100 * time.Millisecond)
	if read(t, other) != "server = \"https://quay.io\"\n" {
		t.Error("operator's quay.io file changed")
	}
}

// Readers (containerd) see either the old or the new complete file, never
// a partial or missing one.
func TestWriteAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h", FileName)
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 1<<20)
	if err := writeAtomic(path, a); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(path)
				reads.Add(1)
				if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 50 {
		c := a
		if i%2 == 0 {
			c = b
		}
		if err := writeAtomic(path, c); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads saw a partial or missing file", bad.Load(), reads.Load())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only %s", len(entries), FileName)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// A mirror outlives its last install by the grace period, so a token the
// kubelet still caches for that upstream is never sent to the upstream.
func TestRemoveGrace(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newMirrors(t, WithRemoveGrace(15*time.Minute), WithClock(func() time.Time { return now }))
	if err := m.Set([]string{"ghcr.io", "quay.io"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Set([]string{"ghcr.io"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path("quay.io")); err != nil {
		t.Fatal("mirror removed before its grace period ended")
	}
	now = now.Add(14 * time.Minute)
	m.Set([]string{"ghcr.io"})
	if _, err := os.Stat(m.Path("quay.io")); err != nil {
		t.Fatal("mirror removed at 14m of a 15m grace")
	}
	// Listed again within the grace: it simply stays.
	m.Set([]string{"ghcr.io", "quay.io"})
	m.Set([]string{"ghcr.io"})
	now = now.Add(14 * time.Minute)
	m.Set([]string{"ghcr.io"})
	if _, err := os.Stat(m.Path("quay.io")); err != nil {
		t.Fatal("grace did not restart when the host came back")
	}
	now = now.Add(2 * time.Minute)
	m.Set([]string{"ghcr.io"})
	if _, err := os.Stat(m.Path("quay.io")); !os.IsNotExist(err) {
		t.Fatal("mirror not removed after its grace period")
	}
	if _, err := os.Stat(m.Path("ghcr.io")); err != nil {
		t.Fatal("listed mirror removed")
	}
}

// A mirror outlives a short grace period while a live token handed out
// for its host does (the kubelet may still send it), and goes once the
// token expired or was revoked.
func TestHoldPastGrace(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var until time.Time
	m := newMirrors(t, WithRemoveGrace(2*time.Second), WithClock(func() time.Time { return now }),
		WithHold(func(h string) time.Time {
			if h == "ghcr.io" {
				return until
			}
			return time.Time{}
		}))
	if err := m.Set([]string{"ghcr.io", "quay.io"}); err != nil {
		t.Fatal(err)
	}
	until = now.Add(10 * time.Minute)
	m.Set(nil)
	now = now.Add(time.Minute)
	m.Set(nil)
	if !exists(m.Path("ghcr.io")) || !m.Routes("ghcr.io") {
		t.Fatal("mirror removed while a token handed out for it lives")
	}
	if exists(m.Path("quay.io")) {
		t.Fatal("mirror without live tokens kept past its grace")
	}
	until = time.Time{} // revoked
	m.Set(nil)
	if exists(m.Path("ghcr.io")) || m.Routes("ghcr.io") {
		t.Fatal("mirror kept after its tokens were revoked")
	}
}

// Routes is what the agent asks before it hands out a token keyed by an
// upstream host: true only while a file this process wrote is in place.
func TestRoutes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newMirrors(t, WithRemoveGrace(15*time.Minute), WithClock(func() time.Time { return now }))
	if m.Routes("ghcr.io") {
		t.Fatal("routes before the first Set")
	}
	if err := os.MkdirAll(filepath.Join(m.Dir(), "quay.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Path("quay.io"), []byte("server = \"https://quay.io\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Set([]string{"ghcr.io", "quay.io", "docker.io"}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{"ghcr.io": true, "docker.io": true, "quay.io": false, "registry.corp": false, "": false} {
		if got := m.Routes(host); got != want {
			t.Errorf("Routes(%q) = %v, want %v", host, got, want)
		}
	}
	// Edited or deleted by someone: not routed until restored.
	if err := os.WriteFile(m.Path("docker.io"), []byte(Marker+"\nserver = \"https://registry-1.docker.io\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.Path("ghcr.io")); err != nil {
		t.Fatal(err)
	}
	if m.Routes("docker.io") || m.Routes("ghcr.io") {
		t.Fatal("routes through an edited or deleted file")
	}
	// No longer listed: still routed during the removal grace, not after.
	if err := m.Set([]string{"docker.io"}); err != nil {
		t.Fatal(err)
	}
	if !m.Routes("ghcr.io") || !m.Routes("docker.io") {
		t.Fatal("restored mirror in its grace period not routed")
	}
	now = now.Add(16 * time.Minute)
	if m.Routes("ghcr.io") {
		t.Fatal("routes after the grace period")
	}
	if !m.Routes("docker.io") {
		t.Fatal("listed host not routed")
	}
}
