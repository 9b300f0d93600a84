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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/containerd"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/imageprune"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/agent/jwks"
	"github.com/pullgate/pullgate/agent/metrics"
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
