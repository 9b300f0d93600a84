package agent_test

// These tests run the real agent (in process, on a real unix socket)
// against a real NATS server and the fake hub in agenttest/hubfake. When
// hub/tokensvc exists they should be pointed at it instead (see the
// package comment of hubfake): the assertions only use pkg/wire.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/imageprune"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/agent/jwks"
	"github.com/pullgate/pullgate/agent/metrics"
	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/pkg/wire"
)

var discard = slog.New(slog.DiscardHandler)

type env struct {
	hub     *hubfake.Hub
	cluster hubfake.Cluster
	a, b    hubfake.Install // ws_1: ghcr.io/org-a ; ws_2: ghcr.io/org-b
	agent   *agenttest.Running
	tokens  []string
	mu      sync.Mutex
}

func newEnv(t *testing.T, opts ...agent.Option) *env {
	t.Helper()
	e := &env{hub: hubfake.New(t)}
	e.cluster = e.hub.AddCluster("prod", false)
	e.a = e.hub.AddInstall(hubfake.Install{Name: "app-a", Workspace: "ws_1", ClusterID: e.cluster.ID, Repos: []string{"ghcr.io/org-a"}})
	e.b = e.hub.AddInstall(hubfake.Install{Name: "app-b", Workspace: "ws_2", ClusterID: e.cluster.ID, Repos: []string{"ghcr.io/org-b"}})
	// The tests stand for a runtime that routes ghcr.io to the hub.
	opts = append([]agent.Option{agent.WithExternalMirrors("ghcr.io")}, opts...)
	e.agent = agenttest.Start(t, agenttest.Config{NATSURL: e.hub.URL(), Join: jointoken.Static(e.cluster.JoinToken), Options: opts})
	e.agent.WaitReady(t)
	t.Cleanup(func() { e.checkLogs(t) })
	return e
}

// ask requests credentials and remembers every token seen.
func (e *env) ask(image string) (wire.Credentials, error) {
	c, err := e.agent.Ask(wire.CredentialsRequest{Image: image})
	if err == nil {
		e.mu.Lock()
		e.tokens = append(e.tokens, c.Password)
		e.mu.Unlock()
	}
	return c, err
}

func (e *env) mustAsk(t *testing.T, image string) wire.Credentials {
	t.Helper()
	c, err := e.ask(image)
	if err != nil {
		t.Fatalf("credentials for %s: %v", image, err)
	}
	return c
}

// checkLogs: no install token, node secret or join token is ever logged.
func (e *env) checkLogs(t *testing.T) {
	e.mu.Lock()
	secrets := append([]string{e.cluster.JoinToken}, e.tokens...)
	e.mu.Unlock()
	for _, n := range e.hub.Nodes() {
		secrets = append(secrets, n.Secret)
	}
	agenttest.NoSecrets(t, e.agent.Logs.String(), secrets...)
}

func status(err error) int {
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestEnrolPersistsIdentityAndRestartUsesIt(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	in := hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: cl.ID, Repos: []string{"ghcr.io/org"}})
	state := filepath.Join(t.TempDir(), "state")
	r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken), StateDir: state,
		Options: []agent.Option{agent.WithExternalMirrors("ghcr.io")}})
	r.WaitReady(t)

	fi, err := os.Stat(identity.Path(state))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(state); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", di.Mode().Perm())
	}
	id, err := identity.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	nodes := hub.Nodes()
	if len(nodes) != 1 || id.NodeID != nodes[0].ID || id.NodeSecret != nodes[0].Secret || id.ClusterID != cl.ID || id.Cluster != "prod" {
		t.Fatalf("stored identity %v does not match the enrolment", id)
	}
	if nodes[0].Name != "node-test" {
		t.Errorf("node name %q sent on enrolment", nodes[0].Name)
	}
	c, err := r.Ask(wire.CredentialsRequest{Image: "ghcr.io/org/app:1"})
	if err != nil || !hub.Valid(c.Password) {
		t.Fatalf("token: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind after a clean shutdown: %v", err)
	}

	// Restart without any join token: the stored identity is used.
	r2 := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), StateDir: state, Options: []agent.Option{agent.WithExternalMirrors("ghcr.io")}})
	r2.WaitReady(t)
	if n := hub.EnrolRequests.Load(); n != 1 {
		t.Fatalf("%d enrolments, want 1 (restart must reuse the identity)", n)
	}
	if len(hub.Nodes()) != 1 {
		t.Fatal("restart created another node")
	}
	c2, err := r2.Ask(wire.CredentialsRequest{Image: "ghcr.io/org/app:2"})
	if err != nil || !hub.Valid(c2.Password) {
		t.Fatalf("token after restart: %v", err)
	}
	agenttest.NoSecrets(t, r.Logs.String()+r2.Logs.String(), cl.JoinToken, id.NodeSecret, c.Password, c2.Password)
	_ = in
}

func TestNoJoinTokenNoIdentityFails(t *testing.T) {
	hub := hubfake.New(t)
	a, err := agent.New(agent.WithNATSURL(hub.URL()), agent.WithStateDir(t.TempDir()),
		agent.WithSocket(filepath.Join(t.TempDir(), "a.sock")), agent.WithMetricsListen(""), agent.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "join token") {
		t.Fatalf("Run = %v, want an error about the missing join token", err)
	}
}

func TestTokenFetchCacheHitAndMetrics(t *testing.T) {
	e := newEnv(t)
	c1 := e.mustAsk(t, "ghcr.io/org-a/app:v1")
	if c1.Username != wire.Username || c1.Registry != "ghcr.io" || !e.hub.Valid(c1.Password) {
		t.Fatalf("credentials %+v", c1.Registry)
	}
	if time.Until(c1.ExpiresAt) < 9*time.Minute {
		t.Fatalf("expiry %s", c1.ExpiresAt)
	}
	for _, img := range []string{"ghcr.io/org-a/app:v2", "ghcr.io/org-a/app", "ghcr.io/org-a/app@sha256:" + strings.Repeat("a", 64)} {
		if c := e.mustAsk(t, img); c.Password != c1.Password {
			t.Errorf("%s: not served from the cache", img)
		}
	}
	if n := e.hub.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d hub round trips, want 1", n)
	}
	if c := e.mustAsk(t, "ghcr.io/org-b/x"); c.Password == c1.Password {
		t.Fatal("other install got the same token")
	}
	// Registry-level request (docker-credential-helper get ghcr.io) is its own key.
	if _, err := e.ask("ghcr.io"); status(err) != http.StatusForbidden {
		t.Fatalf("ghcr.io matches two installs: want 403 ambiguous, got %v", err)
	}

	resp, err := http.Get("http://" + e.agent.Agent.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"pullgate_agent_cache_hits_total 3", "pullgate_agent_cache_misses_total 3",
		`pullgate_agent_tokens_served_total{source="cache"} 3`, `pullgate_agent_tokens_served_total{source="hub"} 2`,
		"pullgate_agent_nats_connected 1", `pullgate_agent_resyncs_total{result="ok"}`,
		`pullgate_agent_hub_request_duration_seconds_count{op="token",result="ok"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	agenttest.NoSecrets(t, string(body), c1.Password, e.cluster.JoinToken)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get("http://" + e.agent.Agent.MetricsAddr() + path)
		if err != nil || resp.StatusCode != want {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

func TestConcurrentRequestsOneRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.hub.SetTokenDelay(150 * time.Millisecond)
	const n = 40
	var wg sync.WaitGroup
	got := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := e.ask(fmt.Sprintf("ghcr.io/org-a/app:%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			got <- c.Password
		}(i)
	}
	wg.Wait()
	close(got)
	distinct := map[string]bool{}
	for p := range got {
		distinct[p] = true
	}
	if n := e.hub.TokenRequests.Load(); n != 1 || len(distinct) != 1 {
		t.Fatalf("%d hub round trips and %d distinct tokens for %d concurrent requests; want 1 and 1", n, len(distinct), 40)
	}
}

func TestRevocationPushPurges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revoke  func(e *env)
		aGone   bool // a's token must not be served again
		bGone   bool
		refused bool
	}{
		{name: "install deleted", revoke: func(e *env) { e.hub.DeleteInstall(e.a.ID, true) }, aGone: true},
		{name: "install disabled", revoke: func(e *env) { e.hub.DisableInstall(e.a.ID, true) }, aGone: true},
		{name: "workspace credential", revoke: func(e *env) { e.hub.RevokeWorkspace("ws_2", true) }, bGone: true},
		{name: "node", revoke: func(e *env) {
			id, _ := e.agent.Agent.Identity()
			e.hub.RevokeNode(id.NodeID, true)
		}, aGone: true, bGone: true, refused: true},
		{name: "cluster", revoke: func(e *env) { e.hub.DeleteCluster(e.cluster.ID, true) }, aGone: true, bGone: true, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.mustAsk(t, "ghcr.io/org-a/app")
			b := e.mustAsk(t, "ghcr.io/org-b/app")
			before := e.agent.Agent.Metrics()
			_ = before
			tc.revoke(e)
			// Purged within milliseconds of the push.
			agenttest.Eventually(t, 2*time.Second, func() bool {
				st := e.agent.Agent.CacheStatus()
				want := 2
				if tc.aGone {
					want--
				}
				if tc.bGone {
					want--
				}
				return st.Entries == want && st.Refused == tc.refused
			}, "revocation applied")
			check := func(image, old string, gone bool) {
				c, err := e.ask(image)
				switch {
				case tc.refused:
					if status(err) != http.StatusServiceUnavailable {
						t.Errorf("%s: revoked node served: %v", image, err)
					}
				case gone && err == nil && c.Password == old:
					t.Errorf("%s: revoked token served again", image)
				case !gone && (err != nil || c.Password != old):
					t.Errorf("%s: unaffected token not served from the cache: %v", image, err)
				}
			}
			check("ghcr.io/org-a/app:2", a.Password, tc.aGone)
			check("ghcr.io/org-b/app:2", b.Password, tc.bGone)
			if tc.refused {
				if ok, why := e.agent.Agent.Ready(); ok || !strings.Contains(why, "refuses") {
					t.Errorf("revoked node reports ready (%q)", why)
				}
				resp, err := http.Get("http://" + e.agent.Agent.MetricsAddr() + "/readyz")
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("/readyz of a revoked node: %v %v", resp.StatusCode, err)
				}
				resp.Body.Close()
				if n := e.hub.EnrolRequests.Load(); n != 1 {
					t.Errorf("revoked node re-enrolled (%d enrolments)", n)
				}
				// The log line may come just after the state changes.
				agenttest.Eventually(t, 5*time.Second, func() bool {
					return strings.Contains(e.agent.Logs.String(), "does not re-enrol")
				}, "a clear log about the revoke")
			}
		})
	}
}

// Revoked at the NATS level only (the push is lost, the hub disconnects
// the node and refuses its credentials): the agent must stop serving and
// must not re-enrol.
func TestAuthRefusalWithoutPush(t *testing.T) {
	e := newEnv(t)
	e.mustAsk(t, "ghcr.io/org-a/app")
	id, _ := e.agent.Agent.Identity()
	e.hub.RevokeNode(id.NodeID, false)
	agenttest.Eventually(t, 5*time.Second, func() bool { return e.agent.Agent.CacheStatus().Refused }, "refusal noticed")
	if _, err := e.ask("ghcr.io/org-a/app"); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("revoked node served: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // several reconnect attempts
	if n := e.hub.EnrolRequests.Load(); n != 1 {
		t.Fatalf("revoked node re-enrolled (%d enrolments)", n)
	}
	if ok, _ := e.agent.Agent.Ready(); ok {
		t.Fatal("revoked node reports ready")
	}
}

func TestSeqGapResyncs(t *testing.T) {
	e := newEnv(t)
	a := e.mustAsk(t, "ghcr.io/org-a/app")
	b := e.mustAsk(t, "ghcr.io/org-b/app")
	syncs := quiesced(e.hub)
	e.hub.DeleteInstall(e.a.ID, false) // seq 1: lost
	e.hub.DisableInstall(e.b.ID, true) // seq 2: arrives, gap → resync
	agenttest.Eventually(t, 2*time.Second, func() bool { return e.agent.Agent.CacheStatus().Entries == 0 }, "resync after gap")
	if e.hub.SyncRequests.Load() <= syncs {
		t.Fatal("no resync after a sequence gap")
	}
	if _, err := e.ask("ghcr.io/org-a/app"); status(err) != http.StatusNotFound {
		t.Fatalf("deleted install (lost push): %v", err)
	}
	if c := e.mustAsk(t, "ghcr.io/org-b/app"); c.Password == b.Password {
		t.Fatal("disabled install's token served")
	}
	_ = a
	// A hub restart (new source, sequence from 1) resyncs too.
	syncs = e.hub.SyncRequests.Load()
	e.hub.RestartHubProcess()
	e.hub.Publish(wire.Revocation{Source: e.hub.Source(), Seq: 1}, e.cluster.ID)
	agenttest.Eventually(t, 2*time.Second, func() bool { return e.hub.SyncRequests.Load() > syncs }, "resync after reset")
	// An undecodable message resyncs.
	syncs = e.hub.SyncRequests.Load()
	e.hub.PublishRaw(e.cluster.ID, []byte("{not json"))
	agenttest.Eventually(t, 2*time.Second, func() bool { return e.hub.SyncRequests.Load() > syncs }, "resync after bad message")
}

// quiesced waits until no resync is in flight (the start-up ones) and
// returns the number of resyncs so far.
func quiesced(h *hubfake.Hub) int64 {
	n := h.SyncRequests.Load()
	for {
		time.Sleep(50 * time.Millisecond)
		m := h.SyncRequests.Load()
		if m == n {
			return n
		}
		n = m
	}
}

// The central disconnect scenario: NATS dies, an install is revoked while
// the node is away (its push is lost), NATS comes back on the same port.
// While disconnected, cached tokens are served; after the reconnect the
// revoked token is never served: a request in the stale window waits for
// the resync.
func TestRevokeWhileDisconnected(t *testing.T) {
	e := newEnv(t)
	a := e.mustAsk(t, "ghcr.io/org-a/app")
	b := e.mustAsk(t, "ghcr.io/org-b/app")
	m := e.agent.Agent.Metrics()

	e.hub.StopNATS()
	agenttest.Eventually(t, 5*time.Second, func() bool { return gauge(m, "pullgate_agent_nats_connected") == 0 }, "agent disconnected")
	// Hub unreachable: cached tokens keep pulls working, nothing else.
	if c := e.mustAsk(t, "ghcr.io/org-a/app:v9"); c.Password != a.Password {
		t.Fatal("cached token not served while disconnected")
	}
	if _, err := e.ask("ghcr.io/org-c/none"); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("uncached image while disconnected: %v, want 503", err)
	}
	if ok, _ := e.agent.Agent.Ready(); !ok {
		t.Error("an agent serving cached tokens while the hub is away should stay ready")
	}

	e.hub.DeleteInstall(e.a.ID, true) // the push is lost: NATS is down
	if e.hub.Valid(a.Password) {
		t.Fatal("test set-up: token still valid at the hub")
	}
	e.hub.SetSyncDelay(400 * time.Millisecond) // widen the stale window
	e.hub.StartNATS()
	agenttest.Eventually(t, 10*time.Second, func() bool { return gauge(m, "pullgate_agent_nats_connected") == 1 }, "agent reconnected")

	start := time.Now()
	c, err := e.ask("ghcr.io/org-a/app")
	if err == nil && c.Password == a.Password {
		t.Fatal("token revoked during the disconnect was served after the reconnect")
	}
	if status(err) != http.StatusNotFound {
		t.Fatalf("after reconnect: %v, want 404 (install deleted)", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("request in the stale window answered after %s: it did not wait for the resync", d)
	}
	if c := e.mustAsk(t, "ghcr.io/org-b/app"); c.Password != b.Password {
		t.Error("unaffected token dropped by the resync")
	}
	if st := e.agent.Agent.CacheStatus(); st.Stale {
		t.Error("still stale after the resync")
	}
}

// Hub down while NATS stays up (no responders): cached tokens are served,
// the refresh falls back to a still-valid cached token.
func TestServeCachedWhileHubUnreachable(t *testing.T) {
	clk := &offsetClock{}
	e := newEnv(t, agent.WithCacheOptions(cache.WithClock(clk.now)), agent.WithHubOptions(hubclient.WithTimeout(300*time.Millisecond)))
	a := e.mustAsk(t, "ghcr.io/org-a/app")
	e.hub.Pause(true)
	if c := e.mustAsk(t, "ghcr.io/org-a/app"); c.Password != a.Password {
		t.Fatal("cached token not served")
	}
	clk.add(9 * time.Minute) // past the refresh point, about 1m of life left
	start := time.Now()
	if c := e.mustAsk(t, "ghcr.io/org-a/app"); c.Password != a.Password {
		t.Fatal("still-valid cached token not served while the hub does not answer")
	}
	t.Logf("fallback after %s (hub request timeout)", time.Since(start).Round(time.Millisecond))
	if _, err := e.ask("ghcr.io/org-b/app"); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("nothing cached and hub unreachable: %v, want 503", err)
	}
	e.hub.Pause(false)
	if c := e.mustAsk(t, "ghcr.io/org-a/app"); c.Password == a.Password {
		t.Fatal("hub back: the token past its refresh point should be replaced")
	}
}

type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *offsetClock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// The join token comes from a Kubernetes Secret volume; the operator fixes
// a wrong token and the kubelet swaps the ..data symlink. The agent must
// pick it up at once, not after its (long) retry backoff.
func TestJoinTokenFileSymlinkSwap(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: cl.ID, Repos: []string{"ghcr.io/org"}})
	dir := t.TempDir()
	writeSecret := func(ts, tok string) {
		if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	wrong := wire.JoinTokenPrefix + cl.ID + ".wrongwrongwrongwrongwrong"
	writeSecret("..2026_01_01_00_00_00.1", wrong)
	if err := os.Symlink("..data/token", filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &agenttest.Logs{}
	src, err := jointoken.WatchFile(ctx, filepath.Join(dir, "token"), jointoken.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: src,
		Options: []agent.Option{agent.WithRetry(time.Minute, time.Minute, 20*time.Millisecond, 200*time.Millisecond), agent.WithExternalMirrors("ghcr.io")}})
	agenttest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(r.Logs.String(), "enrolment failed") }, "first enrolment refused")
	if !strings.Contains(r.Logs.String(), "refused the join token") {
		t.Fatalf("no clear error for a wrong join token:\n%s", r.Logs.String())
	}
	start := time.Now()
	writeSecret("..2026_01_01_00_05_00.2", cl.JoinToken)
	_ = os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1"))
	r.WaitReady(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("new join token picked up after %s", d)
	}
	if _, err := r.Ask(wire.CredentialsRequest{Image: "ghcr.io/org/app"}); err != nil {
		t.Fatal(err)
	}
	agenttest.NoSecrets(t, r.Logs.String()+logs.String(), cl.JoinToken, wrong)
}

func TestSocketPermissionsAndStaleSocket(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	sock := filepath.Join(t.TempDir(), "run", "pullgate", "agent.sock")
	// A socket file left by a dead agent.
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken), Socket: sock,
		Options: []agent.Option{agent.WithExternalMirrors("ghcr.io")}})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o755 {
		t.Errorf("socket dir mode %v", di.Mode().Perm())
	}
	r.WaitReady(t)
	// A second agent on the same socket refuses to start.
	a2, _ := agent.New(agent.WithNATSURL(hub.URL()), agent.WithStateDir(t.TempDir()), agent.WithSocket(sock), agent.WithMetricsListen(""), agent.WithLogger(discard))
	if err := a2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent on a live socket: %v", err)
	}
	// A regular file in the way is not deleted.
	file := filepath.Join(t.TempDir(), "not-a-socket")
	os.WriteFile(file, []byte("x"), 0o600)
	a3, _ := agent.New(agent.WithNATSURL(hub.URL()), agent.WithStateDir(t.TempDir()), agent.WithSocket(file), agent.WithMetricsListen(""), agent.WithLogger(discard))
	if err := a3.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file as socket: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	shared := e.hub.AddCluster("shared", true)
	_ = shared
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.agent.Socket)
	}}}
	big := `{"image":"ghcr.io/org-a/app","service_account_token":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		msg                             string
	}{
		{"get", "GET", wire.CredentialsPath, "", "", 405, "use POST"},
		{"content type", "POST", wire.CredentialsPath, "text/plain", `{"image":"a/b"}`, 415, "application/json"},
		{"empty", "POST", wire.CredentialsPath, "application/json", "", 400, "empty request body"},
		{"malformed", "POST", wire.CredentialsPath, "application/json", `{"image":`, 400, "malformed JSON"},
		{"unknown field", "POST", wire.CredentialsPath, "application/json", `{"image":"ghcr.io/org-a/app","imgae":"x"}`, 400, "unknown field"},
		{"trailing data", "POST", wire.CredentialsPath, "application/json", `{"image":"ghcr.io/org-a/app"} {}`, 400, "data after the object"},
		{"wrong type", "POST", wire.CredentialsPath, "application/json", `{"image":5}`, 400, "malformed JSON"},
		{"no image", "POST", wire.CredentialsPath, "application/json", `{}`, 400, "image is required"},
		{"bad image", "POST", wire.CredentialsPath, "application/json", `{"image":"ghcr.io/Org/../x"}`, 400, "invalid request"},
		{"too big", "POST", wire.CredentialsPath, "application/json", big, 413, "larger than 65536"},
		{"not found", "POST", wire.CredentialsPath, "application/json", `{"image":"quay.io/nobody/app"}`, 404, "no install"},
		{"ambiguous", "POST", wire.CredentialsPath, "application/json", `{"image":"ghcr.io"}`, 403, "several installs"},
		{"forged SA token", "POST", wire.CredentialsPath, "application/json", `{"image":"ghcr.io/org-a/app","service_account_token":"forged"}`, 403, "refused"},
		{"health", "GET", wire.HealthPath, "", "", 200, "ready"},
		{"health post", "POST", wire.HealthPath, "", "", 405, "use GET"},
		{"unknown path", "GET", "/v1/other", "", "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://agent"+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.msg) {
				t.Fatalf("%d %s; want %d containing %q", resp.StatusCode, body, tc.status, tc.msg)
			}
			if tc.status >= 400 && tc.path == wire.CredentialsPath {
				var er wire.ErrorReply
				if err := json.Unmarshal(body, &er); err != nil || er.Error == "" || er.Code == "" {
					t.Fatalf("error body %q is not a wire.ErrorReply", body)
				}
			}
		})
	}
	if n := e.agent.Agent.CacheStatus().Entries; n != 0 {
		t.Fatalf("bad requests changed the cache (%d entries)", n)
	}
}

// A shared cluster: the install is chosen by the pod's service account.
func TestSharedClusterServiceAccounts(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("akash", true)
	ia := hub.AddInstall(hubfake.Install{Workspace: "tenant-a", ClusterID: cl.ID, Repos: []string{"ghcr.io/shared"}, Namespace: "ns-a"})
	ib := hub.AddInstall(hubfake.Install{Workspace: "tenant-b", ClusterID: cl.ID, Repos: []string{"ghcr.io/shared"}, Namespace: "ns-b"})
	r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken),
		Options: []agent.Option{agent.WithExternalMirrors("ghcr.io")}})
	r.WaitReady(t)
	ask := func(sa string) (wire.Credentials, error) {
		return r.Ask(wire.CredentialsRequest{Image: "ghcr.io/shared/app", ServiceAccountToken: sa})
	}
	ca, err := ask(hubfake.SAToken("ns-a", "default"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ask(hubfake.SAToken("ns-b", "default"))
	if err != nil {
		t.Fatal(err)
	}
	if ca.Password == cb.Password || !strings.Contains(ca.Password, ia.ID) || !strings.Contains(cb.Password, ib.ID) {
		t.Fatal("tenants got each other's install")
	}
	if _, err := ask(""); status(err) != http.StatusForbidden {
		t.Fatalf("shared cluster without a service-account token: %v, want 403", err)
	}
	agenttest.NoSecrets(t, r.Logs.String(), ca.Password, cb.Password, hubfake.SAToken("ns-a", "default"), hubfake.SAToken("ns-b", "default"))
}

// gauge reads a metric of the agent's registry.
func gauge(m *metrics.Metrics, name string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// The agent offers the cluster's service-account keys on resync (the hub
// records them as a proposal an operator approves); keys the hub rejects
// are no longer offered.
func TestOffersServiceAccountKeys(t *testing.T) {
	keys := `{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}`
	file := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(file, []byte(keys), 0o600)
	e := newEnv(t, agent.WithJWKS(jwks.File(file)),
		agent.WithSAIssuer(func(context.Context) (string, error) { return "https://k8s.example", nil }))
	if string(e.hub.JWKS()) != keys || e.hub.Issuer() != "https://k8s.example" {
		t.Fatalf("hub got keys %q, issuer %q", e.hub.JWKS(), e.hub.Issuer())
	}

	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", true)
	hub.RejectJWKS(true)
	r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken),
		Options: []agent.Option{agent.WithJWKS(jwks.File(file))}})
	r.WaitReady(t) // synced without the keys
	if !strings.Contains(r.Logs.String(), "rejected this cluster's service-account keys") {
		t.Fatal("no log about rejected keys")
	}
}

// With containerd mirrors enabled the agent keeps a hosts.toml per upstream
// host of the cluster's installs: written on sync, rewritten on the change
// notices the hub pushes, restored when edited.
func TestContainerdMirrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs.d")
	grace := 500 * time.Millisecond
	e := newEnv(t, agent.WithContainerdMirrors(agent.MirrorConfig{ConfigPath: dir, HubURL: "https://hub.example.com", RemoveGrace: &grace}))
	path := func(h string) string { return filepath.Join(dir, h, "hosts.toml") }
	has := func(h string) bool {
		b, err := os.ReadFile(path(h))
		return err == nil && strings.Contains(string(b), `server = "https://hub.example.com/v2"`)
	}
	agenttest.Eventually(t, 5*time.Second, func() bool { return has("ghcr.io") }, "ghcr.io mirror written")
	// The gauge is set after the files are written.
	agenttest.Eventually(t, 5*time.Second, func() bool {
		return gauge(e.agent.Agent.Metrics(), "pullgate_agent_containerd_mirrors") == 1
	}, "mirror gauge")

	// A new install on another host: the hub's notice makes the agent resync.
	c := e.hub.AddInstallNotify(hubfake.Install{Name: "app-c", Workspace: "ws_1", ClusterID: e.cluster.ID, Repos: []string{"registry.corp/team"}})
	agenttest.Eventually(t, 2*time.Second, func() bool { return has("registry.corp") }, "registry.corp mirror written")
	// Deleted: the directory goes, after the grace period (tokens the
	// kubelet may still hold must keep going to the hub).
	e.hub.DeleteInstall(c.ID, true)
	time.Sleep(100 * time.Millisecond)
	if !has("registry.corp") {
		t.Fatal("mirror removed before its grace period")
	}
	agenttest.Eventually(t, 3*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "registry.corp"))
		return errors.Is(err, fs.ErrNotExist)
	}, "registry.corp mirror removed")
	// Edited by hand: restored.
	os.WriteFile(path("ghcr.io"), []byte("server = \"https://ghcr.io\"\n"), 0o644)
	agenttest.Eventually(t, 2*time.Second, func() bool { return has("ghcr.io") }, "ghcr.io mirror restored")
	agenttest.Eventually(t, 2*time.Second, func() bool {
		return strings.Contains(e.agent.Logs.String(), "restored containerd mirror configuration")
	}, "restore logged")
	// A hub that does not report hosts leaves the files alone.
	e.hub.OmitHosts(true)
	e.hub.DeleteInstall(e.a.ID, true)
	e.hub.DeleteInstall(e.b.ID, true)
	agenttest.Eventually(t, 2*time.Second, func() bool { return strings.Contains(e.agent.Logs.String(), "older hub") }, "old hub noted")
	if !has("ghcr.io") {
		t.Error("mirror removed on a sync reply without hosts")
	}
}

// On a shared cluster nothing is mirrored unless the operator enabled the
// host for the node (--mirror-host); elsewhere --mirror-host narrows.
func TestContainerdMirrorsSharedCluster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool
		enable []string
		want   []string
	}{
		{"shared, none enabled", true, nil, nil},
		{"shared, one enabled", true, []string{"registry.corp", "quay.io"}, []string{"registry.corp"}},
		{"single workspace", false, nil, []string{"docker.io", "ghcr.io", "registry.corp"}},
		{"single workspace, narrowed", false, []string{"index.docker.io"}, []string{"docker.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubfake.New(t)
			cl := hub.AddCluster("c", tc.shared)
			hub.AddInstall(hubfake.Install{Workspace: "w", ClusterID: cl.ID, Repos: []string{"ghcr.io/a", "docker.io/library"}, Namespace: "a"})
			hub.AddInstall(hubfake.Install{Workspace: "w", ClusterID: cl.ID, Repos: []string{"registry.corp/b"}, Namespace: "b"})
			dir := filepath.Join(t.TempDir(), "certs.d")
			r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken),
				Options: []agent.Option{agent.WithContainerdMirrors(agent.MirrorConfig{ConfigPath: dir, HubURL: "http://127.0.0.1:5000", Hosts: tc.enable})}})
			r.WaitReady(t)
			var got []string
			agenttest.Eventually(t, 5*time.Second, func() bool {
				got = nil
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					got = append(got, e.Name())
				}
				return strings.Join(got, ",") == strings.Join(tc.want, ",")
			}, fmt.Sprintf("mirrors %v", tc.want))
			if tc.shared && tc.enable == nil {
				agenttest.Eventually(t, 5*time.Second, func() bool {
					return strings.Contains(r.Logs.String(), "no containerd mirrors without --mirror-host")
				}, "shared cluster without --mirror-host explained in the log")
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("shared cluster without --mirror-host: %d mirrors", len(entries))
				}
			}
		})
	}
}

// images is a runtime's image store for TestRemoveRevokedImages (the real
// containerd behind a real kubelet is in e2e/k8s).
type images struct {
	mu   sync.Mutex
	refs map[string][]string // id → names
}

func (s *images) ListImages(context.Context) ([]imageprune.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []imageprune.Image
	for id, refs := range s.refs {
		out = append(out, imageprune.Image{ID: id, Refs: refs})
	}
	return out, nil
}

func (s *images) RemoveImage(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refs, id)
	return nil
}

func (s *images) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.refs[id]
	return ok
}

func TestRemoveRevokedImages(t *testing.T) {
	store := &images{refs: map[string][]string{
		"sha256:a":      {"ghcr.io/org-a/app:1"},
		"sha256:b":      {"ghcr.io/org-b/app:1"},
		"sha256:public": {"docker.io/library/busybox:1"},
	}}
	e := newEnv(t, agent.WithRemoveRevokedImages(store))
	e.mustAsk(t, "ghcr.io/org-a/app:1")
	e.mustAsk(t, "ghcr.io/org-b/app:1")
	e.hub.DeleteInstall(e.a.ID, true)
	agenttest.Eventually(t, 5*time.Second, func() bool { return !store.has("sha256:a") }, "the deleted install's image removed")
	if !store.has("sha256:b") || !store.has("sha256:public") {
		t.Fatalf("images of a live install or never served through the hub removed: %v", store.refs)
	}
	id, _ := e.agent.Agent.Identity()
	e.hub.RevokeNode(id.NodeID, true)
	agenttest.Eventually(t, 5*time.Second, func() bool { return !store.has("sha256:b") }, "a revoked node's images removed")
	if !store.has("sha256:public") {
		t.Fatal("an image never served through the hub was removed")
	}
}
