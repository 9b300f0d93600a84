// Enrolment: a join token becomes the node's identity, once.

package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/wire"
)

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
