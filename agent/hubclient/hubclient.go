// Package hubclient is the node agent's side of the NATS control plane
// (pkg/wire): enrolment with a join token, and the node's own connection
// that asks for tokens and resyncs and receives revocations.
//
// The node connection reconnects forever with capped exponential backoff
// and jitter. When the server refuses the node's credentials the Refused
// event fires; the connection keeps retrying with the same identity (the
// hub may only have been unreachable for the auth callout) and never falls
// back to the join token: re-enrolling would undo an operator's revoke.
package hubclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/metrics"
	"github.com/pullgate/pullgate/pkg/wire"
)

// ErrUnreachable wraps every failure to get an answer from the hub:
// NATS unreachable or disconnected, no hub subscribed, timeout.
var ErrUnreachable = errors.New("hub unreachable")

// ErrJoinRefused means the NATS server refused the join token.
var ErrJoinRefused = errors.New("the hub refused the join token (wrong or rotated token, or the cluster was deleted)")

// ReplyError is an error the hub answered with.
type ReplyError struct {
	Op      string // enrol, token, sync
	Code    string // wire.Code*
	Message string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("hub refused the %s request: %s (%s)", e.Op, e.Message, e.Code)
}

// IsRefusal reports whether err is the NATS server refusing credentials.
func IsRefusal(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthRevoked)
}

type config struct {
	timeout       time.Duration
	reconnectMin  time.Duration
	reconnectMax  time.Duration
	pingInterval  time.Duration
	name          string
	agentVersion  string
	log           *slog.Logger
	m             *metrics.Metrics
	extraNATSOpts []nats.Option
	caFile        string
	insecure      bool
}

// Option configures Enrol and Dial.
type Option func(*config)

// WithTimeout bounds every request (default 5s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithReconnectWait sets the reconnect backoff: min doubles per failed
// round up to max, plus up to 20% jitter (default 500ms .. 30s).
func WithReconnectWait(min, max time.Duration) Option {
	return func(c *config) { c.reconnectMin, c.reconnectMax = min, max }
}

// WithPingInterval sets how often the connection is checked (default 10s;
// three missed pongs count as a disconnect).
func WithPingInterval(d time.Duration) Option { return func(c *config) { c.pingInterval = d } }

// WithName sets the NATS connection name (the node name).
func WithName(n string) Option { return func(c *config) { c.name = n } }

// WithAgentVersion is sent on enrolment.
func WithAgentVersion(v string) Option { return func(c *config) { c.agentVersion = v } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMetrics sets the metrics.
func WithMetrics(m *metrics.Metrics) Option { return func(c *config) { c.m = m } }

// WithNATSOptions adds raw nats.go options (tests).
func WithNATSOptions(o ...nats.Option) Option {
	return func(c *config) { c.extraNATSOpts = append(c.extraNATSOpts, o...) }
}

func newConfig(opts []Option) config {
	c := config{timeout: 5 * time.Second, reconnectMin: 500 * time.Millisecond, reconnectMax: 30 * time.Second,
		pingInterval: 10 * time.Second, name: "pullgate-agent", log: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	if c.m == nil {
		c.m = metrics.New()
	}
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Enrol exchanges a join token for a node identity. The connection is
// closed before it returns.
func Enrol(ctx context.Context, natsURL, joinToken string, req wire.EnrolRequest, opts ...Option) (wire.EnrolReply, error) {
	cfg := newConfig(opts)
	clusterID, _, err := wire.ParseJoinToken(joinToken)
	if err != nil {
		return wire.EnrolReply{}, err
	}
	if req.AgentVersion == "" {
		req.AgentVersion = cfg.agentVersion
	}
	secure, err := cfg.security(natsURL)
	if err != nil {
		return wire.EnrolReply{}, fmt.Errorf("enrol: %w", err)
	}
	enrolID := randomHex(16)
	nopts := append(append(secure,
		nats.UserInfo(wire.EnrolUser(enrolID), joinToken),
		nats.CustomInboxPrefix(wire.EnrolInboxPrefix(enrolID)),
		nats.Name(cfg.name+" (enrolling)"),
		nats.NoReconnect(),
		nats.Timeout(cfg.timeout),
		// Errors are returned, not printed by nats.go's default handler.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	), cfg.extraNATSOpts...)
	nc, err := nats.Connect(natsURL, nopts...)
	if err != nil {
		if IsRefusal(err) {
			return wire.EnrolReply{}, fmt.Errorf("enrol with %s: %w", wire.RedactURL(natsURL), ErrJoinRefused)
		}
		if isTLSFailure(err) {
			return wire.EnrolReply{}, fmt.Errorf("enrol: connect to %s: %w", wire.RedactURL(natsURL), tlsHint(err))
		}
		if perr := probeNATS(ctx, natsURL, cfg.timeout); perr != nil {
			return wire.EnrolReply{}, fmt.Errorf("enrol: connect: %w", perr)
		}
		return wire.EnrolReply{}, fmt.Errorf("enrol: connect to %s: %w: %w", wire.RedactURL(natsURL), ErrUnreachable, err)
	}
	defer nc.Close()
	var reply wire.EnrolReply
	// Once: a retry after a lost answer would spend the join token again.
	if err := request(ctx, cfg, nc, "enrol", wire.EnrolSubject(clusterID), 1, req, &reply); err != nil {
		return wire.EnrolReply{}, err
	}
	if reply.Error != "" {
		return wire.EnrolReply{}, &ReplyError{Op: "enrol", Code: reply.Code, Message: reply.Error}
	}
	return reply, nil
}

// request sends a JSON request and decodes the JSON reply, timing it.
// retryAttempts splits the timeout of token and sync requests (both safe
// to repeat) into attempts. With several hub replicas the request goes to a
// random member of the queue group, and a replica that hangs keeps its place
// there until NATS drops its connection (about 15 s): a request that lands
// on it gets no answer, and a retry most likely lands elsewhere.
const retryAttempts = 3

func request(ctx context.Context, cfg config, nc *nats.Conn, op, subject string, attempts int, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	if !nc.IsConnected() {
		cfg.m.HubLatency.WithLabelValues(op, "unreachable").Observe(0)
		return fmt.Errorf("%s: %w: not connected to NATS", op, ErrUnreachable)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	start := time.Now()
	var msg *nats.Msg
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, cfg.timeout/time.Duration(attempts))
		msg, err = nc.RequestWithContext(actx, subject, data)
		acancel()
		if err == nil || attempt >= attempts || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	elapsed := time.Since(start).Seconds()
	if err != nil {
		cfg.m.HubLatency.WithLabelValues(op, "unreachable").Observe(elapsed)
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("%s: %w: no hub token service is listening", op, ErrUnreachable)
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: %w: %w", op, ErrUnreachable, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		cfg.m.HubLatency.WithLabelValues(op, "error").Observe(elapsed)
		return fmt.Errorf("%s: malformed hub reply: %w", op, err)
	}
	cfg.m.HubLatency.WithLabelValues(op, "ok").Observe(elapsed)
	return nil
}

// Events are the node connection's callbacks. They run on nats.go's
// callback goroutine (one at a time) and must not block for long.
type Events struct {
	Connected    func()                // first successful connection
	Reconnected  func()                // every later one
	Disconnected func(err error)       // connection lost
	Refused      func(err error)       // the server refused the node's credentials
	Revocation   func(wire.Revocation) // pushed by the hub
	BadMessage   func(err error)       // an undecodable revocation: resync
}

// Conn is an enrolled node's connection.
type Conn struct {
	cfg config
	id  identity.Identity
	nc  *nats.Conn
	sub *nats.Subscription
}

// Dial connects as the node and subscribes to its cluster's revocations.
// It returns at once; the connection is made (and remade) in the
// background and reported through ev.
func Dial(natsURL string, id identity.Identity, ev Events, opts ...Option) (*Conn, error) {
	cfg := newConfig(opts)
	if err := id.Validate(); err != nil {
		return nil, err
	}
	secure, err := cfg.security(natsURL)
	if err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg, id: id}
	log := cfg.log
	call := func(f func()) {
		if f != nil {
			f()
		}
	}
	refused := func(err error) {
		if IsRefusal(err) && ev.Refused != nil {
			ev.Refused(err)
		}
	}
	var probed atomic.Bool // whether a failed connect was probed for a non-NATS server
	nopts := append(append(secure,
		nats.UserInfo(id.NodeID, id.NodeSecret),
		nats.CustomInboxPrefix(wire.InboxPrefix(id.NodeID)),
		nats.Name(cfg.name),
		nats.Timeout(cfg.timeout),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectBufSize(-1), // fail fast while disconnected
		nats.PingInterval(cfg.pingInterval),
		nats.MaxPingsOutstanding(3),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return Backoff(attempts, cfg.reconnectMin, cfg.reconnectMax)
		}),
		nats.ConnectHandler(func(*nats.Conn) {
			cfg.m.NATSConnected.Set(1)
			log.Info("connected to the hub's NATS", "node", id.NodeID, "cluster", id.ClusterID)
			call(ev.Connected)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info("reconnected to the hub's NATS; resyncing before serving cached tokens")
			call(ev.Reconnected)
			cfg.m.NATSConnected.Set(1)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from the hub's NATS; serving cached tokens until they expire", "err", err)
			if ev.Disconnected != nil {
				ev.Disconnected(err)
			}
			cfg.m.NATSConnected.Set(0)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if isTLSFailure(err) {
				log.Error("cannot connect to the hub's NATS", "err", tlsHint(err))
				return
			}
			log.Debug("reconnect attempt failed", "err", err)
			if !IsRefusal(err) && !probed.Swap(true) {
				// Once per connection: a wrong port stays wrong.
				ctx, cancel := context.WithTimeout(context.Background(), 2*maxProbeWait)
				perr := probeNATS(ctx, natsURL, cfg.timeout)
				cancel()
				if perr != nil {
					log.Error("cannot connect to the hub's NATS", "err", perr)
				}
			}
			refused(err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if IsRefusal(err) {
				refused(err)
				return
			}
			if errors.Is(err, nats.ErrAuthExpired) {
				log.Debug("NATS authorization expired; reconnecting to renew it")
				return
			}
			log.Warn("NATS error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { cfg.m.NATSConnected.Set(0) }),
	), cfg.extraNATSOpts...)
	nc, err := nats.Connect(natsURL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", wire.RedactURL(natsURL), err)
	}
	c.nc = nc
	c.sub, err = nc.Subscribe(wire.RevokeSubject(id.ClusterID), func(m *nats.Msg) {
		var r wire.Revocation
		if err := json.Unmarshal(m.Data, &r); err != nil {
			log.Warn("undecodable revocation; resyncing", "err", err)
			if ev.BadMessage != nil {
				ev.BadMessage(err)
			}
			return
		}
		if ev.Revocation != nil {
			ev.Revocation(r)
		}
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to revocations: %w", err)
	}
	// Revocations must never be dropped as a slow consumer.
	_ = c.sub.SetPendingLimits(-1, -1)
	return c, nil
}

// Backoff is the reconnect delay after the given number of failed rounds:
// min·2^(attempts-1) capped at max, plus up to 20% jitter.
func Backoff(attempts int, min, max time.Duration) time.Duration {
	d := max
	if attempts < 1 {
		attempts = 1
	}
	if attempts < 32 {
		d = time.Duration(math.Min(float64(min)*math.Pow(2, float64(attempts-1)), float64(max)))
	}
	if d <= 0 {
		d = time.Millisecond
	}
	return d + time.Duration(mrand.Int64N(int64(d)/5+1))
}

// Connected reports whether the connection is up.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// Token asks the hub for an install token. A hub error reply is returned
// as *ReplyError.
func (c *Conn) Token(ctx context.Context, req wire.TokenRequest) (wire.TokenReply, error) {
	var reply wire.TokenReply
	if err := request(ctx, c.cfg, c.nc, "token", wire.TokenSubject(c.id.ClusterID, c.id.NodeID), retryAttempts, req, &reply); err != nil {
		return wire.TokenReply{}, err
	}
	if reply.Error != "" {
		return wire.TokenReply{}, &ReplyError{Op: "token", Code: reply.Code, Message: reply.Error}
	}
	return reply, nil
}

// Sync asks the hub for the live state of the cluster's installs.
func (c *Conn) Sync(ctx context.Context, req wire.SyncRequest) (wire.SyncReply, error) {
	var reply wire.SyncReply
	if err := request(ctx, c.cfg, c.nc, "sync", wire.SyncSubject(c.id.ClusterID, c.id.NodeID), retryAttempts, req, &reply); err != nil {
		return wire.SyncReply{}, err
	}
	if reply.Error != "" {
		return wire.SyncReply{}, &ReplyError{Op: "sync", Code: reply.Code, Message: reply.Error}
	}
	if reply.Installs == nil {
		reply.Installs = map[string]wire.InstallState{}
	}
	return reply, nil
}

// Close closes the connection.
func (c *Conn) Close() {
	c.nc.Close()
}
