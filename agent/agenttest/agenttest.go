// Package agenttest runs real agents in tests (for tests only, like
// net/http/httptest): the agent's own code on a real unix socket, with its
// logs captured so tests can check that no token is ever logged. The fake
// hub they talk to is in agenttest/hubfake.
package agenttest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Logs is a concurrency-safe log sink.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger logs to l at debug level.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Running is an agent running in the test process.
type Running struct {
	Agent    *agent.Agent
	Socket   string
	StateDir string
	Logs     *Logs
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	err      error
}

// FastOptions make reconnects, retries and resyncs quick for tests.
func FastOptions() []agent.Option {
	return []agent.Option{
		agent.WithHubOptions(hubclient.WithReconnectWait(20*time.Millisecond, 200*time.Millisecond),
			hubclient.WithTimeout(2*time.Second)),
		agent.WithRetry(20*time.Millisecond, 200*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond),
		agent.WithCacheOptions(cache.WithStaleWait(3 * time.Second)),
	}
}

// Config is what Start needs.
type Config struct {
	NATSURL  string
	Join     jointoken.Source
	StateDir string // default: a temporary directory
	Socket   string // default: <tmp>/run/agent.sock
	Options  []agent.Option
}

// Start runs an agent until the test ends (or Stop).
func Start(t testing.TB, c Config) *Running {
	t.Helper()
	dir := t.TempDir()
	if c.StateDir == "" {
		c.StateDir = filepath.Join(dir, "state")
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(dir, "run", "agent.sock")
	}
	logs := &Logs{}
	opts := append([]agent.Option{
		agent.WithNATSURL(c.NATSURL), agent.WithStateDir(c.StateDir), agent.WithSocket(c.Socket),
		agent.WithMetricsListen("127.0.0.1:0"), agent.WithNodeName("node-test"), agent.WithLogger(logs.Logger()),
	}, FastOptions()...)
	if c.Join != nil {
		opts = append(opts, agent.WithJoinToken(c.Join))
	}
	opts = append(opts, c.Options...)
	a, err := agent.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Agent: a, Socket: c.Socket, StateDir: c.StateDir, Logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	select {
	case <-a.Listening():
	case err := <-r.done:
		cancel()
		t.Fatalf("agent exited: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not start listening")
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// Stop stops the agent and returns Run's error.
func (r *Running) Stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(15 * time.Second):
			r.err = errors.New("agent did not stop")
		}
	})
	return r.err
}

// WaitReady waits until the agent is enrolled, connected and synced.
func (r *Running) WaitReady(t testing.TB) {
	t.Helper()
	Eventually(t, 10*time.Second, func() bool {
		ok, _ := r.Agent.Ready()
		return ok && r.Agent.CacheStatus().Synced
	}, "agent ready")
}

// Ask sends a credentials request over the socket, as the helper does.
func (r *Running) Ask(req wire.CredentialsRequest) (wire.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return agentclient.Credentials(ctx, r.Socket, req)
}

// Eventually polls cond until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NoSecrets fails the test if any of the secrets appears in text.
func NoSecrets(t testing.TB, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret (%.8s…) appears in the output", s)
		}
	}
}
