// Package agent is the pullgate node agent: it enrols the node with the
// hub (join token → node identity), keeps the node's NATS connection to
// the hub, caches install tokens (package cache) and hands them to the
// credential helper over a unix socket (package server).
//
//	helper ──unix socket──▶ Agent.Credentials ──▶ cache ──miss──▶ hubclient ──NATS──▶ hub
//	                                                ▲
//	                        revocations, resyncs ───┘
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/containerd"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/imageprune"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/agent/jwks"
	"github.com/pullgate/pullgate/agent/metrics"
	"github.com/pullgate/pullgate/agent/server"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Defaults.
const (
	DefaultStateDir      = "/var/lib/pullgate-agent"
	DefaultMetricsListen = "127.0.0.1:9464"
	DefaultResync        = 60 * time.Second
)

// Agent is one node agent. Create it with New and start it with Run.
type Agent struct {
	natsURL        string
	join           jointoken.Source
	stateDir       string
	socket         string
	metricsListen  string
	nodeName       string
	log            *slog.Logger
	m              *metrics.Metrics
	hubOpts        []hubclient.Option
	cacheOpts      []cache.Option
	resyncEvery    time.Duration
	syncRetryMin   time.Duration
	syncRetryMax   time.Duration
	enrolRetryMin  time.Duration
	enrolRetryMax  time.Duration
	shutdownWindow time.Duration
	jwks           jwks.Source
	saIssuer       jwks.IssuerSource
	mirrorCfg      *MirrorConfig
	mirrors        *containerd.Mirrors
	externalHosts  []string // routed to the hub by the operator (WithExternalMirrors)
	images         imageprune.ImageService
	pruner         atomic.Pointer[imageprune.Pruner]

	cache     atomic.Pointer[cache.Cache]
	conn      atomic.Pointer[hubclient.Conn]
	id        atomic.Pointer[identity.Identity]
	connected atomic.Bool
	syncCh    chan struct{}

	mu          sync.Mutex
	metricsAddr string
	listening   chan struct{}
	refusedSeen bool
	keys        json.RawMessage // last JWKS offered to the hub
	issuer      string          // and the issuer offered with it
	keysAt      time.Time
	keysOff     bool // the hub rejected them: stop offering
	mirrorNote  string
}

// Option configures an Agent.
type Option func(*Agent)

// WithNATSURL is the hub's NATS URL (required).
func WithNATSURL(u string) Option { return func(a *Agent) { a.natsURL = u } }

// WithJoinToken is where the join token comes from (needed until the node
// has enrolled).
func WithJoinToken(s jointoken.Source) Option { return func(a *Agent) { a.join = s } }

// WithStateDir is where the node identity is kept (default
// /var/lib/pullgate-agent).
func WithStateDir(d string) Option { return func(a *Agent) { a.stateDir = d } }

// WithSocket is the unix socket for the helper (default wire.DefaultSocket).
func WithSocket(p string) Option { return func(a *Agent) { a.socket = p } }

// WithMetricsListen is the metrics/health HTTP address; "" disables it.
func WithMetricsListen(addr string) Option { return func(a *Agent) { a.metricsListen = addr } }

// WithNodeName is the node's name sent on enrolment.
func WithNodeName(n string) Option { return func(a *Agent) { a.nodeName = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *Agent) { a.log = l } }

// WithMetrics sets the metrics (default: a fresh registry).
func WithMetrics(m *metrics.Metrics) Option { return func(a *Agent) { a.m = m } }

// WithHubOptions passes options to the NATS client.
func WithHubOptions(o ...hubclient.Option) Option {
	return func(a *Agent) { a.hubOpts = append(a.hubOpts, o...) }
}

// WithCacheOptions passes options to the token cache.
func WithCacheOptions(o ...cache.Option) Option {
	return func(a *Agent) { a.cacheOpts = append(a.cacheOpts, o...) }
}

// WithJWKS offers the cluster's service-account issuer keys to the hub on
// resync, as a proposal an operator approves.
func WithJWKS(s jwks.Source) Option { return func(a *Agent) { a.jwks = s } }

// WithSAIssuer offers the issuer of the cluster's service-account tokens
// with the keys (WithJWKS).
func WithSAIssuer(s jwks.IssuerSource) Option { return func(a *Agent) { a.saIssuer = s } }

// MirrorConfig makes the agent keep containerd's hosts.toml files: one per
// upstream host the node's installs use, naming the hub as the only host.
type MirrorConfig struct {
	// ConfigPath is containerd's registry config_path
	// (/etc/containerd/certs.d).
	ConfigPath string
	// HubURL is the hub's HTTP(S) URL as the node reaches it.
	HubURL string
	// HubCA is an optional CA file for the hub's certificate.
	HubCA string
	// RemoveGrace, when set, replaces containerd.DefaultRemoveGrace.
	RemoveGrace *time.Duration
	// Hosts, when set, limits the mirrors to these upstream hosts (the
	// ones the operator enabled for this node). On a shared cluster
	// nothing is mirrored without them: a mirror is node-wide and would
	// send every pull of the host, public images too, to the hub.
	Hosts []string
}

// WithContainerdMirrors enables the hosts.toml writer.
func WithContainerdMirrors(c MirrorConfig) Option { return func(a *Agent) { a.mirrorCfg = &c } }

// WithExternalMirrors names upstream hosts that the node's runtime sends
// to the hub, without fallback to the upstream, through mirrors the agent
// does not manage (a hosts.toml written by other tooling; not a
// registries.conf [[registry.mirror]], which falls back). The agent
// answers mirror-form requests ("ghcr.io/org/app") only for hosts it
// mirrors itself and for these: for any other host the runtime would
// offer the install token to the upstream.
func WithExternalMirrors(hosts ...string) Option {
	return func(a *Agent) { a.externalHosts = append(a.externalHosts, hosts...) }
}

// WithRemoveRevokedImages makes the agent remove, through the runtime's
// CRI image service, the images the node pulled only for installs the hub
// has since revoked (package imageprune).
func WithRemoveRevokedImages(svc imageprune.ImageService) Option {
	return func(a *Agent) { a.images = svc }
}

// WithResyncInterval sets the periodic resync (default 60s).
func WithResyncInterval(d time.Duration) Option { return func(a *Agent) { a.resyncEvery = d } }

// WithRetry sets the backoff of enrolment and failed resync attempts.
func WithRetry(enrolMin, enrolMax, syncMin, syncMax time.Duration) Option {
	return func(a *Agent) {
		a.enrolRetryMin, a.enrolRetryMax, a.syncRetryMin, a.syncRetryMax = enrolMin, enrolMax, syncMin, syncMax
	}
}

// New checks the configuration and returns an agent.
func New(opts ...Option) (*Agent, error) {
	host, _ := os.Hostname()
	a := &Agent{
		stateDir: DefaultStateDir, socket: wire.DefaultSocket, metricsListen: DefaultMetricsListen, nodeName: host,
		log: slog.Default(), resyncEvery: DefaultResync,
		syncRetryMin: 250 * time.Millisecond, syncRetryMax: 10 * time.Second,
		enrolRetryMin: time.Second, enrolRetryMax: time.Minute, shutdownWindow: 5 * time.Second,
		syncCh: make(chan struct{}, 1), listening: make(chan struct{}),
	}
	for _, o := range opts {
		o(a)
	}
	switch {
	case a.natsURL == "":
		return nil, errors.New("the hub's NATS URL is required (--nats-url or PULLGATE_NATS_URL)")
	case a.stateDir == "":
		return nil, errors.New("state dir is required")
	case a.socket == "":
		return nil, errors.New("socket path is required")
	}
	if a.m == nil {
		a.m = metrics.New()
	}
	a.externalHosts = slices.Clone(a.externalHosts)
	for i, h := range a.externalHosts {
		ch, err := imageref.CanonicalHost(h)
		if err != nil {
			return nil, fmt.Errorf("--external-mirror-host: %w", err)
		}
		a.externalHosts[i] = ch
	}
	if c := a.mirrorCfg; c != nil {
		opts := []containerd.Option{containerd.WithLogger(a.log.With("component", "containerd-mirrors")),
			containerd.WithMetrics(a.m.ContainerdMirrors, a.m.ContainerdMirrorRestores)}
		if c.HubCA != "" {
			opts = append(opts, containerd.WithHubCA(c.HubCA))
		}
		if c.RemoveGrace != nil {
			opts = append(opts, containerd.WithRemoveGrace(*c.RemoveGrace))
		}
		// A short grace (or a hub --token-ttl longer than it) must not
		// remove a mirror while the kubelet holds a live token for it.
		opts = append(opts, containerd.WithHold(func(host string) time.Time {
			if c := a.cache.Load(); c != nil {
				return c.LiveUntil(host)
			}
			return time.Time{}
		}))
		m, err := containerd.New(c.ConfigPath, c.HubURL, opts...)
		if err != nil {
			return nil, err
		}
		c.Hosts = slices.Clone(c.Hosts)
		for i, h := range c.Hosts {
			ch, err := imageref.CanonicalHost(h)
			if err != nil {
				return nil, fmt.Errorf("--mirror-host: %w", err)
			}
			c.Hosts[i] = ch
		}
		a.mirrors = m
	}
	a.hubOpts = append([]hubclient.Option{hubclient.WithLogger(a.log), hubclient.WithMetrics(a.m),
		hubclient.WithName("pullgate-agent " + a.nodeName), hubclient.WithAgentVersion(version.Version())}, a.hubOpts...)
	if err := hubclient.Validate(a.natsURL, a.hubOpts...); err != nil {
		return nil, err
	}
	return a, nil
}

// Metrics returns the agent's metrics.
func (a *Agent) Metrics() *metrics.Metrics { return a.m }

// Listening is closed once the socket (and metrics listener) accept
// connections.
func (a *Agent) Listening() <-chan struct{} { return a.listening }

// MetricsAddr is the bound metrics address (after Listening).
func (a *Agent) MetricsAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.metricsAddr
}

// Identity is the node identity once enrolled.
func (a *Agent) Identity() (identity.Identity, bool) {
	id := a.id.Load()
	if id == nil {
		return identity.Identity{}, false
	}
	return *id, true
}

// CacheStatus reports the token cache's state.
func (a *Agent) CacheStatus() cache.Status {
	if c := a.cache.Load(); c != nil {
		return c.Status()
	}
	return cache.Status{}
}

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

// fetch is the cache's way to the hub.
func (a *Agent) fetch(ctx context.Context, req wire.TokenRequest) (wire.TokenReply, error) {
	conn := a.conn.Load()
	if conn == nil {
		return wire.TokenReply{}, fmt.Errorf("%w: not connected yet", cache.ErrUnreachable)
	}
	r, err := conn.Token(ctx, req)
	if errors.Is(err, hubclient.ErrUnreachable) {
		return r, unreachable{err}
	}
	return r, err
}

// unreachable marks a hubclient error as cache.ErrUnreachable without
// repeating the words in the message.
type unreachable struct{ err error }

func (u unreachable) Error() string   { return u.err.Error() }
func (u unreachable) Unwrap() []error { return []error{u.err, cache.ErrUnreachable} }

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

func (a *Agent) triggerSync() {
	select {
	case a.syncCh <- struct{}{}:
	default:
	}
}

// syncLoop resyncs on demand (connect, reconnect, sequence gap) and
// periodically; while the cache is stale it retries with backoff.
func (a *Agent) syncLoop(ctx context.Context, c *cache.Cache, conn *hubclient.Conn) {
	tick := time.NewTicker(a.resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.syncCh:
		case <-tick.C:
		}
		for attempt := 1; ; attempt++ {
			err := a.syncOnce(ctx, c, conn)
			if err == nil || ctx.Err() != nil {
				break
			}
			if !conn.Connected() || !c.Status().Stale {
				break // the reconnect (or the next tick) triggers the next attempt
			}
			select {
			case <-ctx.Done():
				return
			case <-a.syncCh:
			case <-time.After(hubclient.Backoff(attempt, a.syncRetryMin, a.syncRetryMax)):
			}
		}
	}
}

func (a *Agent) syncOnce(ctx context.Context, c *cache.Cache, conn *hubclient.Conn) error {
	keys, issuer := a.serviceAccountKeys(ctx)
	req := wire.SyncRequest{Seq: c.Seq(), JWKS: keys, Issuer: issuer}
	t := c.BeginSync()
	reply, err := conn.Sync(ctx, req)
	if err != nil {
		a.m.Resyncs.WithLabelValues("error").Inc()
		var re *hubclient.ReplyError
		if errors.As(err, &re) && re.Code == wire.CodeForbidden {
			c.Refuse()
			if p := a.pruner.Load(); p != nil {
				p.Synced(nil) // the node is refused: every install is revoked here
			}
			a.logRefused("the hub refused this node's resync", err)
			return nil
		}
		if errors.As(err, &re) && re.Code == wire.CodeInvalid && len(req.JWKS) > 0 {
			a.mu.Lock()
			a.keysOff = true
			a.mu.Unlock()
			a.log.Error("the hub rejected this cluster's service-account keys; no longer offering them", "err", err)
			return a.syncOnce(ctx, c, conn) // again, without them
		}
		a.log.Warn("resync with the hub failed", "err", err)
		return err
	}
	c.ApplySync(t, reply)
	a.updateMirrors(reply)
	if p := a.pruner.Load(); p != nil {
		p.Synced(reply.Installs)
	}
	if !c.Status().Refused {
		a.mu.Lock()
		a.refusedSeen = false
		a.mu.Unlock()
	}
	a.m.Resyncs.WithLabelValues("ok").Inc()
	return nil
}

// updateMirrors brings containerd's hosts.toml files in line with the
// upstream hosts of the cluster's live installs.
func (a *Agent) updateMirrors(reply wire.SyncReply) {
	if a.mirrors == nil {
		return
	}
	if reply.Hosts == nil {
		a.noteMirrors("the hub does not report upstream hosts (older hub?); containerd mirror configuration left as it is")
		return
	}
	hosts := reply.Hosts
	id, _ := a.Identity()
	switch {
	case len(a.mirrorCfg.Hosts) > 0:
		hosts = slices.DeleteFunc(slices.Clone(hosts), func(h string) bool { return !slices.Contains(a.mirrorCfg.Hosts, h) })
	case id.Shared:
		hosts = nil
		if len(reply.Hosts) > 0 {
			a.noteMirrors("shared cluster: no containerd mirrors without --mirror-host (a mirror is node-wide and would send " +
				"every pull of the host, public images of other tenants too, to the hub); use path-prefix images or enable hosts with --mirror-host")
		}
	}
	if err := a.mirrors.Set(hosts); err != nil {
		a.log.Error("containerd mirror configuration", "err", err)
	}
}

// noteMirrors logs a warning once until it changes.
func (a *Agent) noteMirrors(msg string) {
	a.mu.Lock()
	seen := a.mirrorNote == msg
	a.mirrorNote = msg
	a.mu.Unlock()
	if !seen {
		a.log.Warn(msg)
	}
}

// serviceAccountKeys returns the JWKS (and, when known, its issuer) to
// offer on resync (fetched at most every ten minutes), or nil.
func (a *Agent) serviceAccountKeys(ctx context.Context) (json.RawMessage, string) {
	if a.jwks == nil {
		return nil, ""
	}
	a.mu.Lock()
	keys, issuer, at, off := a.keys, a.issuer, a.keysAt, a.keysOff
	a.mu.Unlock()
	if off {
		return nil, ""
	}
	if keys != nil && time.Since(at) < 10*time.Minute {
		return keys, issuer
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fresh, err := a.jwks(fctx)
	if err != nil {
		a.log.Warn("cannot read the cluster's service-account keys to offer the hub", "err", err)
		return keys, issuer
	}
	if a.saIssuer != nil {
		if iss, err := a.saIssuer(fctx); err != nil {
			a.log.Warn("cannot read the issuer of the cluster's service-account tokens to offer the hub", "err", err)
		} else {
			issuer = iss
		}
	}
	a.mu.Lock()
	a.keys, a.issuer, a.keysAt = fresh, issuer, time.Now()
	a.mu.Unlock()
	return fresh, issuer
}

// Credentials answers the helper (server.Backend).
func (a *Agent) Credentials(ctx context.Context, req wire.CredentialsRequest) (wire.Credentials, error) {
	c := a.cache.Load()
	if c == nil {
		return wire.Credentials{}, server.ErrNotReady
	}
	res, err := c.Get(ctx, req)
	if err != nil {
		return wire.Credentials{}, err
	}
	reg := res.Reply.Registry
	if reg == "" {
		reg = registryOf(req.Image)
	}
	if !res.Reply.Hub && !a.routesToHub(reg, imageref.RegistryOnly(req.Image)) {
		// The runtime would send the token to the upstream itself.
		return wire.Credentials{}, fmt.Errorf("%w: pulls of %s do not go through the pullgate hub on this node "+
			"(no containerd mirror kept by the agent, no --external-mirror-host); name the image through the hub "+
			"(HUB/%s/...) or route the host to the hub", server.ErrNotRouted, reg, reg)
	}
	a.m.TokensServed.WithLabelValues(string(res.Source)).Inc()
	if p := a.pruner.Load(); p != nil {
		p.Served(req.Image, res.Reply.InstallID, res.Reply.Workspace)
	}
	return wire.Credentials{Registry: reg, Username: wire.Username, Password: res.Reply.Token, ExpiresAt: res.Reply.ExpiresAt}, nil
}

// routesToHub reports whether the node's runtime sends pulls of the
// upstream host to the hub: a containerd mirror the agent keeps (written
// and in place, in its removal grace period too), or a host the operator
// routes through the hub. A bare registry host comes from the
// docker-credential-helper protocol, whose users (podman, skopeo, buildah,
// docker) do not read containerd's hosts.toml: for them only the
// operator's word counts.
func (a *Agent) routesToHub(host string, credHelper bool) bool {
	if host == "" {
		return false
	}
	if slices.Contains(a.externalHosts, host) {
		return true
	}
	return !credHelper && a.mirrors != nil && a.mirrors.Routes(host)
}

func registryOf(image string) string {
	h, _ := imageref.Host(image, imageref.OfImage())
	return h
}

// Ready reports whether the agent serves (server.Backend).
func (a *Agent) Ready() (bool, string) {
	c := a.cache.Load()
	if c == nil {
		return false, "not enrolled with the hub yet"
	}
	st := c.Status()
	switch {
	case st.Refused:
		return false, "the hub refuses this node (node revoked or cluster deleted)"
	case !st.Synced && !a.connected.Load():
		return false, "not connected to the hub yet"
	}
	return true, ""
}

func (a *Agent) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.m.Registry, promhttp.HandlerOpts{Registry: a.m.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, why := a.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + why + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// loadOrEnrol returns the stored identity, or enrols with the join token,
// retrying with backoff (and at once when the token file changes).
func (a *Agent) loadOrEnrol(ctx context.Context) (identity.Identity, error) {
	id, err := identity.Load(a.stateDir)
	if err == nil {
		a.log.Info("using stored node identity", "identity", id)
		if a.join != nil {
			if tok, err := a.join.Token(); err == nil {
				if cl, _, err := wire.ParseJoinToken(tok); err == nil && cl != id.ClusterID {
					a.log.Warn("the join token names another cluster than the stored identity; keeping the identity "+
						"(delete it to enrol into the other cluster)", "identity_cluster", id.ClusterID, "join_token_cluster", cl)
				}
			}
		}
		return id, nil
	}
	if !errors.Is(err, identity.ErrNotFound) {
		return identity.Identity{}, err
	}
	if a.join == nil {
		return identity.Identity{}, fmt.Errorf("no node identity in %s and no join token (--join-token-file, --join-token or PULLGATE_JOIN_TOKEN)", a.stateDir)
	}
	for attempt := 1; ; attempt++ {
		id, err := a.enrolOnce(ctx)
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return identity.Identity{}, ctx.Err()
		}
		wait := hubclient.Backoff(attempt, a.enrolRetryMin, a.enrolRetryMax)
		hint := "retrying"
		if errors.Is(err, hubclient.ErrJoinRefused) {
			hint = "fix the join token (the file is re-read when it changes); retrying"
		}
		a.log.Error("enrolment failed", "err", err, "next_attempt_in", wait.Round(time.Millisecond).String(), "hint", hint)
		select {
		case <-ctx.Done():
			return identity.Identity{}, ctx.Err()
		case <-a.join.Changed():
			attempt = 0
		case <-time.After(wait):
		}
	}
}

func (a *Agent) enrolOnce(ctx context.Context) (identity.Identity, error) {
	tok, err := a.join.Token()
	if err != nil {
		return identity.Identity{}, err
	}
	reply, err := hubclient.Enrol(ctx, a.natsURL, tok, wire.EnrolRequest{NodeName: a.nodeName, AgentVersion: version.Version()}, a.hubOpts...)
	if err != nil {
		return identity.Identity{}, err
	}
	id, err := identity.FromEnrolReply(reply, a.nodeName, time.Now())
	if err != nil {
		return identity.Identity{}, fmt.Errorf("enrol: %w", err)
	}
	if err := identity.Save(a.stateDir, id); err != nil {
		return identity.Identity{}, err
	}
	a.log.Info("enrolled with the hub", "identity", id, "saved_to", identity.Path(a.stateDir))
	return id, nil
}
