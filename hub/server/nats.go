package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/tokensvc"
)

// startNATS runs the embedded NATS server with the hub's auth callout. It
// is the control plane node agents connect to. With tlsConf it takes TLS
// connections only (the hub's own in-process connection excepted).
// JetStream stays off: nothing uses it, and it would be attack surface and
// a store in the data dir.
func startNATS(listen string, tlsConf *tls.Config, creds natsauth.Credentials) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: bad port", listen)
	}
	opts := &natsserver.Options{
		ServerName: "pullgate-hub",
		Host:       host,
		Port:       port,
		JetStream:  false,
		NoSigs:     true, // the hub handles signals
		NoLog:      true,
		MaxPayload: 1 << 20,
	}
	if tlsConf != nil {
		opts.TLSConfig, opts.TLS, opts.TLSTimeout = tlsConf, true, 5
	}
	creds.Configure(opts)
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	fatal := make(chan error, 1)
	ns.SetLogger(fatalCatcher{fatal}, false, false)
	ns.Start()
	if err := waitNATSReady(ns, fatal, listen, 15*time.Second); err != nil {
		ns.Shutdown()
		return nil, err
	}
	return ns, nil
}

// waitNATSReady waits until the embedded server takes connections, and
// returns at once when it could not listen (nats-server only logs that).
func waitNATSReady(ns *natsserver.Server, fatal <-chan error, listen string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-fatal:
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("nats: listen on %s: the address is in use (another hub or NATS server?): stop it or choose another --nats-listen", listen)
			}
			return fmt.Errorf("nats: listen on %s: %w", listen, err)
		default:
		}
		if ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats: not ready on %s after %v", listen, timeout)
		}
	}
}

// fatalCatcher is the embedded server's logger: it drops everything (the
// hub logs its own view of NATS) but hands the first fatal error, a
// listener that could not bind, to startNATS.
type fatalCatcher struct{ ch chan<- error }

func (f fatalCatcher) Fatalf(format string, v ...any) {
	var err error
	for _, a := range v {
		if e, ok := a.(error); ok {
			err = e
			break
		}
	}
	if err == nil {
		err = fmt.Errorf(format, v...)
	}
	select {
	case f.ch <- err:
	default:
	}
}

func (fatalCatcher) Noticef(string, ...any) {}
func (fatalCatcher) Warnf(string, ...any)   {}
func (fatalCatcher) Errorf(string, ...any)  {}
func (fatalCatcher) Debugf(string, ...any)  {}
func (fatalCatcher) Tracef(string, ...any)  {}

// connectNATS connects the hub to its NATS server as the callout's auth
// user. Publishes are not buffered while disconnected: a revocation that
// cannot be delivered now is recovered by the agents' resync, never
// replayed late.
func connectNATS(url string, tlsConf *tls.Config, ns *natsserver.Server, creds natsauth.Credentials, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("pullgate-hub"),
		nats.UserInfo(natsauth.HubUser, creds.Password),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		// A NATS node that hangs (its socket open, nothing answered) is
		// left for another of the --nats-url list within about 15 s, not
		// nats.go's 2m x 2: the hub's queue subscriptions and revocation
		// pushes move with it.
		nats.PingInterval(natsauth.StalePingInterval),
		nats.MaxPingsOutstanding(natsauth.StalePingMax),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if ns != nil {
		// In process: nothing crosses the network, so no TLS.
		opts = append(opts, nats.InProcessServer(ns))
		url = strings.Replace(ns.ClientURL(), "tls://", "nats://", 1)
	} else if tlsConf != nil {
		// Not nats.Secure: a loopback nats:// URL may stay plain text, and
		// a server that requires TLS is then verified with this config.
		opts = append(opts, func(o *nats.Options) error { o.TLSConfig = tlsConf; return nil })
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", redactURL(url), err)
	}
	return nc, nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "REDACTED" + u[i:]
		}
	}
	return u
}

// nodeReader reads a node identity (and its secret hash).
type nodeReader interface {
	NodeByID(ctx context.Context, id string) (store.Node, []byte, error)
}

// nodeRevoker pushes revocations through the token service and, on the
// embedded server, also disconnects connections of node identities that
// are no longer valid (an external server drops them when their
// authorization expires, and the token service refuses them meanwhile).
type nodeRevoker struct {
	*tokensvc.Service
	ns    *natsserver.Server
	store nodeReader
	log   *slog.Logger
}

func (r nodeRevoker) NodeRevoked(ctx context.Context, c store.Cluster, n store.Node) error {
	err := r.Service.NodeRevoked(ctx, c, n)
	r.sweep(ctx)
	return err
}

func (r nodeRevoker) ClusterDeleted(ctx context.Context, c store.Cluster) error {
	err := r.Service.ClusterDeleted(ctx, c)
	r.sweep(ctx)
	return err
}

// sweep disconnects every node connection whose identity is revoked or gone.
func (r nodeRevoker) sweep(ctx context.Context) {
	if r.ns == nil {
		return
	}
	conns, err := r.ns.Connz(&natsserver.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		r.log.Warn("list NATS connections", "err", err)
		return
	}
	for _, ci := range conns.Conns {
		if !strings.HasPrefix(ci.AuthorizedUser, "node_") {
			continue
		}
		n, _, err := r.store.NodeByID(ctx, ci.AuthorizedUser)
		if errors.Is(err, store.ErrNotFound) || (err == nil && n.Revoked) {
			if err := r.ns.DisconnectClientByID(ci.Cid); err == nil {
				r.log.Info("disconnected revoked node", "node", ci.AuthorizedUser)
			}
		}
	}
}
