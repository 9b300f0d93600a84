// Sync: the agent's view of its installs, mirrors and service-account
// keys, refreshed on every hub event and periodically.

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/wire"
)

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
	req := wire.SyncRequest{Seq: c.Seq(), JWKS: keys, Issuer: issuer, AgentVersion: version.Version()}
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
