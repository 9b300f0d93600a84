// Package natsauth is the hub's NATS auth callout service: the NATS server
// (embedded, or an external nats-server configured with an auth_callout
// block) asks the hub about every connecting agent, and the hub answers
// with a user JWT whose permissions confine it.
//
// Why auth callout rather than decentralised JWT accounts: the hub's
// database stays the only source of truth for node identities. Enrolling a
// node is a row insert and revoking it a row update; there are no account
// JWTs to re-sign and push to every server, and the same code serves the
// embedded server and an external cluster.
//
// What a connection may do (enforced by the NATS server, not by the agent):
//   - an enrolling agent (user "enrol-<id>", password = join token): publish
//     only its cluster's enrol subject, subscribe only to its own inbox;
//   - an enrolled node (user = node id, password = node secret): publish
//     only its own token and sync subjects, subscribe only to its cluster's
//     revocation subject and its own inbox.
package natsauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// CalloutSubject is where the NATS server sends authorization requests.
const CalloutSubject = "$SYS.REQ.USER.AUTH"

// HubUser is the NATS user the hub itself connects as; it bypasses the
// callout (auth_users) and may use every subject of the account.
const HubUser = "pullgate-hub"

// Account is the account agents are placed in: the global account of a
// server without explicit accounts.
const Account = "$G"

var enrolIDRE = regexp.MustCompile(`^[a-f0-9]{16,64}$`)

// Authorizer decides NATS connections.
type Authorizer struct {
	store    Nodes
	issuer   nkeys.KeyPair
	log      *slog.Logger
	now      func() time.Time
	nodeTTL  time.Duration
	enrolTTL time.Duration
}

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *Authorizer) { a.log = l } }

// WithNodeTTL bounds how long a node's authorization lasts before the
// server asks again (a revoked node on an external server is cut off at
// the latest then).
func WithNodeTTL(d time.Duration) Option { return func(a *Authorizer) { a.nodeTTL = d } }

// New returns an Authorizer signing with the account key whose public key
// is the callout issuer in the server's configuration.
func New(s Nodes, issuer nkeys.KeyPair, opts ...Option) *Authorizer {
	a := &Authorizer{store: s, issuer: issuer, log: slog.Default(), now: time.Now, nodeTTL: time.Hour, enrolTTL: 2 * time.Minute}
	for _, o := range opts {
		o(a)
	}
	return a
}

// CalloutQueue is the queue group of the callout's subscribers: with
// several hub replicas on one NATS cluster, each authorization request is
// answered by one of them, not by all (which would multiply the store
// reads and the signed responses by the number of replicas).
const CalloutQueue = "pullgate-auth"

// Subscribe starts answering authorization requests on nc, which must be
// connected as HubUser.
func (a *Authorizer) Subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(CalloutSubject, CalloutQueue, a.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", CalloutSubject, err)
	}
	return sub, nil
}

func (a *Authorizer) handle(m *nats.Msg) {
	req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
	if err != nil {
		a.log.Warn("nats auth: undecodable request", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	user, err := a.decide(ctx, &req.AuthorizationRequest)
	if err != nil {
		// Logged without the password; the client sees only "authorization violation".
		a.log.Info("nats auth refused", "user", req.ConnectOptions.Username, "client", req.ClientInformation.Host, "reason", err)
		resp.Error = "not authorized"
	} else {
		signed, err := user.Encode(a.issuer)
		if err != nil {
			a.log.Error("nats auth: sign user", "err", err)
			resp.Error = "internal error"
		} else {
			resp.Jwt = signed
		}
	}
	token, err := resp.Encode(a.issuer)
	if err != nil {
		a.log.Error("nats auth: sign response", "err", err)
		return
	}
	_ = m.Respond([]byte(token))
}

// ErrDenied is why a connection was refused.
var ErrDenied = errors.New("denied")

// decide maps connect options to a scoped user, or refuses.
func (a *Authorizer) decide(ctx context.Context, req *jwt.AuthorizationRequest) (*jwt.UserClaims, error) {
	opts := req.ConnectOptions
	user := jwt.NewUserClaims(req.UserNkey)
	user.Audience = Account
	now := a.now()
	if enrolID, ok := strings.CutPrefix(opts.Username, "enrol-"); ok {
		if !enrolIDRE.MatchString(enrolID) {
			return nil, fmt.Errorf("%w: enrol id must be 16-64 lowercase hex digits", ErrDenied)
		}
		clusterID, err := a.checkJoinToken(ctx, opts.Password)
		if err != nil {
			return nil, err
		}
		user.Name = opts.Username
		user.Pub.Allow.Add(wire.EnrolSubject(clusterID))
		user.Sub.Allow.Add(wire.EnrolInboxPrefix(enrolID) + ".>")
		user.Limits.Payload, user.Limits.Subs = 64<<10, 4
		user.Expires = now.Add(a.enrolTTL).Unix()
		return user, nil
	}
	if !strings.HasPrefix(opts.Username, "node_") {
		return nil, fmt.Errorf("%w: unknown identity", ErrDenied)
	}
	node, hash, err := a.store.NodeByID(ctx, opts.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: no such node", ErrDenied)
	case err != nil:
		return nil, err
	case !SecretMatches(opts.Password, wire.NodeSecretPrefix, hash):
		return nil, fmt.Errorf("%w: wrong node secret", ErrDenied)
	case node.Revoked:
		return nil, fmt.Errorf("%w: node revoked", ErrDenied)
	}
	if _, err := a.store.ClusterByID(ctx, node.ClusterID); err != nil {
		return nil, fmt.Errorf("%w: cluster of node: %v", ErrDenied, err)
	}
	user.Name = node.ID
	user.Pub.Allow.Add(wire.TokenSubject(node.ClusterID, node.ID), wire.SyncSubject(node.ClusterID, node.ID))
	user.Sub.Allow.Add(wire.RevokeSubject(node.ClusterID), wire.InboxPrefix(node.ID)+".>")
	user.Limits.Payload, user.Limits.Subs = 256<<10, 8
	user.Expires = now.Add(a.nodeTTL).Unix()
	return user, nil
}

func (a *Authorizer) checkJoinToken(ctx context.Context, tok string) (string, error) {
	clusterID, secret, err := wire.ParseJoinToken(tok)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDenied, err)
	}
	hash, err := a.store.ClusterJoinHash(ctx, clusterID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: join token names no cluster", ErrDenied)
	}
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(Hash(secret), hash) != 1 {
		return "", fmt.Errorf("%w: join token does not match (rotated?)", ErrDenied)
	}
	return clusterID, nil
}

// NewSecret returns a random secret with its prefix, and its hash for the
// store. Secrets are 256 random bits, so a plain SHA-256 is enough.
func NewSecret(prefix string) (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	return prefix + raw, Hash(raw)
}

// NewJoinToken returns a join token for the cluster and its hash.
func NewJoinToken(clusterID string) (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	return wire.JoinTokenPrefix + clusterID + "." + raw, Hash(raw)
}

// Hash is the stored form of a secret.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// SecretMatches compares a presented secret (with prefix) to a stored hash
// in constant time.
func SecretMatches(presented, prefix string, hash []byte) bool {
	raw, ok := strings.CutPrefix(presented, prefix)
	if !ok || len(hash) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(Hash(raw), hash) == 1
}
