// Serving: the credential helper's requests, readiness and metrics.

package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/server"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

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

func (u unreachable) Error() string { return u.err.Error() }

func (u unreachable) Unwrap() []error { return []error{u.err, cache.ErrUnreachable} }

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
