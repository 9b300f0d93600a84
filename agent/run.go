// Run is the agent's lifecycle: enrol, connect, serve the socket and
// metrics, react to the hub's events, and shut down.

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/imageprune"
	"github.com/pullgate/pullgate/agent/server"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Run runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := identity.EnsureDir(a.stateDir); err != nil {
		return err
	}
	ln, err := server.ListenUnix(a.socket, a.log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           server.Handler(a, a.log, a.m),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	defer a.shutdown(srv)

	if a.metricsListen != "" {
		mln, err := net.Listen("tcp", a.metricsListen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		a.mu.Lock()
		a.metricsAddr = mln.Addr().String()
		a.mu.Unlock()
		msrv := &http.Server{Handler: a.metricsHandler(), ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
		go func() { _ = msrv.Serve(mln) }()
		defer a.shutdown(msrv)
	}
	if a.mirrors != nil {
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := a.mirrors.Run(mctx); err != nil {
				a.log.Error("containerd mirror configuration is not watched", "err", err)
			}
		}()
		defer func() { cancel(); <-done }()
	}
	if a.images != nil {
		p := imageprune.New(a.images, a.stateDir, imageprune.WithLogger(a.log.With("component", "remove-revoked-images")))
		a.pruner.Store(p)
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); p.Run(pctx) }()
		defer func() { cancel(); <-done }()
		p.Kick() // revocations recorded before a restart
	}
	close(a.listening)
	a.log.Info("pullgate agent listening", "version", version.Version(), "socket", a.socket, "metrics", a.MetricsAddr(),
		"nats", wire.RedactURL(a.natsURL), "state_dir", a.stateDir)

	id, err := a.loadOrEnrol(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.id.Store(&id)

	connected := func() bool {
		conn := a.conn.Load()
		return conn != nil && conn.Connected()
	}
	c := cache.New(id.NodeID, a.fetch, append([]cache.Option{cache.WithLogger(a.log), cache.WithMetrics(a.m),
		cache.WithConnected(connected)}, a.cacheOpts...)...)
	a.cache.Store(c)
	conn, err := hubclient.Dial(a.natsURL, id, a.events(c), a.hubOpts...)
	if err != nil {
		return err
	}
	a.conn.Store(conn)
	defer conn.Close()
	a.triggerSync()
	a.syncLoop(ctx, c, conn)
	a.log.Info("pullgate agent stopping")
	return nil
}

func (a *Agent) shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), a.shutdownWindow)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

func (a *Agent) events(c *cache.Cache) hubclient.Events {
	return hubclient.Events{
		Connected: func() {
			a.connected.Store(true)
			a.triggerSync()
		},
		Reconnected: func() {
			a.connected.Store(true)
			c.MarkStale()
			a.triggerSync()
		},
		Disconnected: func(error) {
			a.connected.Store(false)
			c.MarkStale()
		},
		Refused: func(err error) {
			a.connected.Store(false)
			c.Refuse()
			a.logRefused("the NATS server refused this node's identity", err)
		},
		Revocation: func(r wire.Revocation) {
			// With containerd mirrors, every change notice resyncs: the
			// set of upstream hosts may have changed with it.
			if c.ApplyRevocation(r) || a.mirrors != nil {
				a.triggerSync()
			}
			id, _ := a.Identity()
			if p := a.pruner.Load(); p != nil && p.Revoked(r, id.NodeID) {
				a.triggerSync() // the hub's list of live installs decides
			}
			if id.NodeID != "" && (r.Cluster || slices.Contains(r.Nodes, id.NodeID)) {
				a.logRefused("the hub revoked this node", nil)
			}
		},
		BadMessage: func(error) {
			c.MarkStale()
			a.triggerSync()
		},
	}
}

func (a *Agent) logRefused(what string, err error) {
	a.mu.Lock()
	seen := a.refusedSeen
	a.refusedSeen = true
	a.mu.Unlock()
	if seen {
		return
	}
	attrs := []any{"identity", identity.Path(a.stateDir)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	a.log.Error(what+": the token cache is purged and nothing is served. "+
		"The agent does not re-enrol with the join token (that would undo the revoke); "+
		"it keeps retrying with its identity and reports not ready. "+
		"To enrol this node again, delete the identity file and restart the agent.", attrs...)
}
