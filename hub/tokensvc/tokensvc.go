// Package tokensvc is the hub's side of the node control plane on NATS:
// it enrols nodes, issues install tokens to them, answers resyncs, and
// pushes revocations to clusters. It runs as a queue group, so several hub
// processes share the requests.
package tokensvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// maxRequest bounds a request body.
const maxRequest = 64 << 10

// Service is the token service. Create it with New, then Start it.
type Service struct {
	store    Clusters
	keys     *token.Keyring
	log      *slog.Logger
	ttl      time.Duration
	hubHosts []string
	now      func() time.Time
	onMint   func()

	source string
	seq    atomic.Uint64
	nc     *nats.Conn
	subs   []*nats.Subscription

	vmu       sync.Mutex
	verifiers map[string]*satoken.Verifier // by cluster id + JWKS hash
}

// Option configures a Service.
type Option func(*Service)

// WithTTL sets the lifetime of issued install tokens (default 10 minutes).
func WithTTL(d time.Duration) Option { return func(s *Service) { s.ttl = d } }

// WithHubHosts names the hub as images address it in path-prefix form
// ("hub.example.com", "127.0.0.1:5080"); such images are resolved to the
// upstream image they name.
func WithHubHosts(hosts ...string) Option {
	return func(s *Service) {
		for _, h := range hosts {
			if h != "" {
				s.hubHosts = append(s.hubHosts, strings.ToLower(h))
			}
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithMintHook is called for every token issued (metrics).
func WithMintHook(f func()) Option { return func(s *Service) { s.onMint = f } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns a token service.
func New(st Clusters, keys *token.Keyring, opts ...Option) *Service {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s := &Service{store: st, keys: keys, log: slog.Default(), ttl: 10 * time.Minute, now: time.Now,
		onMint: func() {}, source: hex.EncodeToString(b), verifiers: map[string]*satoken.Verifier{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start subscribes to the enrol, token and sync subjects in the hub's
// queue group, and publishes revocations on nc from now on.
func (s *Service) Start(nc *nats.Conn) error {
	s.nc = nc
	for subj, h := range map[string]nats.MsgHandler{
		wire.EnrolSubjectAll: s.handleEnrol,
		wire.TokenSubjectAll: s.handleToken,
		wire.SyncSubjectAll:  s.handleSync,
	} {
		sub, err := nc.QueueSubscribe(subj, wire.QueueGroup, s.ownInboxOnly(h))
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		s.subs = append(s.subs, sub)
	}
	return nc.Flush()
}

// Stop unsubscribes; requests in flight finish.
func (s *Service) Stop() {
	for _, sub := range s.subs {
		_ = sub.Drain()
	}
}

func (s *Service) respond(m *nats.Msg, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode reply", "subject", m.Subject, "err", err)
		return
	}
	if err := m.Respond(b); err != nil {
		s.log.Warn("reply", "subject", m.Subject, "err", err)
	}
}

func decode(m *nats.Msg, v any) *wire.ErrorReply {
	if len(m.Data) > maxRequest {
		return &wire.ErrorReply{Code: wire.CodeInvalid, Error: fmt.Sprintf("request larger than %d bytes", maxRequest)}
	}
	dec := json.NewDecoder(strings.NewReader(string(m.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &wire.ErrorReply{Code: wire.CodeInvalid, Error: "invalid request: " + err.Error()}
	}
	return nil
}

func ctxFor() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func internal(err error) *wire.ErrorReply {
	return &wire.ErrorReply{Code: wire.CodeInternal, Error: "hub error"}
}

// handleEnrol creates a node identity. The NATS server only let this
// message through if the connection presented the cluster's join token.
func (s *Service) handleEnrol(m *nats.Msg) {
	var req wire.EnrolRequest
	if e := decode(m, &req); e != nil {
		s.respond(m, wire.EnrolReply{ErrorReply: *e})
		return
	}
	ctx, cancel := ctxFor()
	defer cancel()
	clusterID, err := wire.ParseEnrolSubject(m.Subject)
	if err != nil {
		s.respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Code: wire.CodeInvalid, Error: err.Error()}})
		return
	}
	c, err := s.store.ClusterByID(ctx, clusterID)
	if err != nil {
		s.respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Code: wire.CodeForbidden, Error: "cluster no longer exists"}})
		return
	}
	nodeName := strings.ToLower(strings.TrimSpace(req.NodeName))
	if nodeName == "" {
		nodeName = "node"
	}
	if !store.ValidName(nodeName) {
		s.respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Code: wire.CodeInvalid,
			Error: fmt.Sprintf("node name %q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-'", req.NodeName)}})
		return
	}
	secret, hash := natsauth.NewSecret(wire.NodeSecretPrefix)
	n, err := s.store.EnrolNode(ctx, c.ID, nodeName, hash)
	if errors.Is(err, store.ErrJoinTokenSpent) {
		s.log.Warn("enrol refused", "cluster", c.Name, "err", err)
		s.respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Code: wire.CodeForbidden,
			Error: "the join token of cluster " + c.Name + " is used up or expired: ask the operator for a new one (pullgate-hub cluster rotate-join-token)"}})
		return
	}
	if err != nil {
		s.log.Error("enrol node", "cluster", c.Name, "err", err)
		s.respond(m, wire.EnrolReply{ErrorReply: *internal(err)})
		return
	}
	s.log.Info("node enrolled", "cluster", c.Name, "node", n.ID, "name", n.Name, "agent_version", clipVersion(req.AgentVersion))
	s.contact(ctx, n.ID, req.AgentVersion)
	s.respond(m, wire.EnrolReply{NodeID: n.ID, NodeSecret: secret, ClusterID: c.ID, Cluster: c.Name, Shared: c.WorkspaceID == ""})
}

// node checks that a node may still be served.
func (s *Service) node(ctx context.Context, subject string) (store.Node, store.Cluster, *wire.ErrorReply) {
	clusterID, nodeID, err := wire.ParseNodeSubject(subject)
	if err != nil {
		return store.Node{}, store.Cluster{}, &wire.ErrorReply{Code: wire.CodeInvalid, Error: err.Error()}
	}
	n, _, err := s.store.NodeByID(ctx, nodeID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && (n.Revoked || n.ClusterID != clusterID)):
		return n, store.Cluster{}, &wire.ErrorReply{Code: wire.CodeForbidden, Error: "node is revoked or unknown"}
	case err != nil:
		return n, store.Cluster{}, internal(err)
	}
	c, err := s.store.ClusterByID(ctx, clusterID)
	if err != nil {
		return n, c, &wire.ErrorReply{Code: wire.CodeForbidden, Error: "cluster no longer exists"}
	}
	return n, c, nil
}

func (s *Service) handleToken(m *nats.Msg) {
	var req wire.TokenRequest
	if e := decode(m, &req); e != nil {
		s.respond(m, wire.TokenReply{ErrorReply: *e})
		return
	}
	ctx, cancel := ctxFor()
	defer cancel()
	s.respond(m, s.Issue(ctx, m.Subject, req))
}

// Issue answers one token request arriving on subject.
func (s *Service) Issue(ctx context.Context, subject string, req wire.TokenRequest) wire.TokenReply {
	node, c, e := s.node(ctx, subject)
	if e != nil {
		return wire.TokenReply{ErrorReply: *e}
	}
	registry, tgt, err := s.resolve(req.Image)
	if err != nil {
		return wire.TokenReply{ErrorReply: wire.ErrorReply{Code: wire.CodeInvalid, Error: err.Error()}}
	}
	// A shared cluster picks installs by the pod's verified service-account
	// token, so it serves nothing until an operator approved the keys that
	// verify it. A single-workspace cluster picks by image among its own
	// workspace's installs; approved keys there only narrow the choice to
	// the pod's namespace.
	if c.WorkspaceID == "" && len(c.SAJWKS) == 0 {
		return wire.TokenReply{ErrorReply: *noApprovedKeys(c)}
	}
	var sa *satoken.Claims
	if req.ServiceAccountToken != "" && len(c.SAJWKS) > 0 {
		claims, e := s.verifySA(c, req.ServiceAccountToken)
		if e != nil {
			return wire.TokenReply{ErrorReply: *e}
		}
		sa = &claims
	}
	installs, err := s.store.InstallsByCluster(ctx, c.ID)
	if err != nil {
		s.log.Error("list installs", "cluster", c.Name, "err", err)
		return wire.TokenReply{ErrorReply: *internal(err)}
	}
	in, e := selectInstall(c, installs, tgt, sa)
	if e != nil {
		return wire.TokenReply{ErrorReply: *e}
	}
	creds, err := s.store.CredentialsByWorkspaceID(ctx, in.WorkspaceID)
	if err != nil {
		return wire.TokenReply{ErrorReply: *internal(err)}
	}
	if !tgt.coveredBy(creds) {
		return wire.TokenReply{ErrorReply: wire.ErrorReply{Code: wire.CodeNotFound,
			Error: "install " + in.Name + " allows " + tgt.String() + " but no enabled registry credential of its workspace covers it"}}
	}
	tok, claims, err := s.keys.Mint(token.Claims{Install: in.ID, Workspace: in.WorkspaceID, Cluster: c.ID, Node: node.ID,
		Repos: in.Repos, Generation: in.Generation, Lease: in.Lease}, s.ttl)
	if err != nil {
		s.log.Error("mint token", "err", err)
		return wire.TokenReply{ErrorReply: *internal(err)}
	}
	s.onMint()
	return wire.TokenReply{Token: tok, ExpiresAt: claims.ExpiresAt().UTC(), Install: in.Name, InstallID: in.ID,
		Workspace: in.WorkspaceID, Generation: in.Generation, Epoch: Epoch(creds), Registry: registry,
		Hub: slices.Contains(s.hubHosts, registry)}
}

// resolve returns the auth key for the request (its registry as the image
// names it) and what credentials are asked for. A path-prefix image through
// the hub ("HUB/ghcr.io/org/app:1") stands for the image after the hub's
// host. A bare registry host ("ghcr.io", from the docker-credential-helper
// protocol) asks for that whole upstream, or for anything through the hub.
func (s *Service) resolve(image string) (string, target, error) {
	if image == "" || len(image) > 1024 {
		return "", target{}, errors.New("image: want a reference of at most 1024 characters")
	}
	if imageref.RegistryOnly(image) {
		if slices.Contains(s.hubHosts, strings.ToLower(image)) {
			return strings.ToLower(image), target{}, nil
		}
		h, err := imageref.CanonicalHost(image)
		if err != nil {
			return "", target{}, err
		}
		return h, target{repo: imageref.Repo{Host: h}}, nil
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", target{}, fmt.Errorf("image %q: %w", image, err)
	}
	reg := strings.ToLower(ref.Context().RegistryStr())
	if slices.Contains(s.hubHosts, reg) {
		rest := image[strings.IndexByte(image, '/')+1:]
		repo, _, err := imageref.ParseImage(rest)
		return reg, target{repo: repo}, err
	}
	repo, _, err := imageref.ParseImage(image)
	if err != nil {
		return "", target{}, err
	}
	return repo.Host, target{repo: repo}, nil
}

// Epoch summarises the credential state of a workspace that cached tokens
// depend on: it changes when a credential is added, removed, disabled or
// enabled (not when a secret is rotated).
func Epoch(creds []store.Credential) string {
	parts := make([]string, 0, len(creds))
	for _, c := range creds {
		parts = append(parts, fmt.Sprintf("%s:%t", c.ID, c.Enabled))
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(sum[:8])
}

func noApprovedKeys(c store.Cluster) *wire.ErrorReply {
	return &wire.ErrorReply{Code: wire.CodeForbidden,
		Error: "cluster " + c.Name + " has no approved service-account keys; run `pullgate-hub cluster jwks show " + c.Name +
			"` and `cluster jwks approve` (or `cluster jwks set`)"}
}

// VerifyServiceAccount verifies a service-account token of cluster c as
// pulls are verified: signed by the cluster's approved keys, its issuer
// and audience, and bound to a pod. The API uses it for a cluster's Akash
// binding controller. The error says why, never echoing the token.
func (s *Service) VerifyServiceAccount(c store.Cluster, tok string) (satoken.Claims, error) {
	claims, e := s.verifySA(c, tok)
	if e != nil {
		return satoken.Claims{}, errors.New(e.Error)
	}
	return claims, nil
}

func (s *Service) verifySA(c store.Cluster, tok string) (satoken.Claims, *wire.ErrorReply) {
	if len(c.SAJWKS) == 0 {
		return satoken.Claims{}, noApprovedKeys(c)
	}
	sum := sha256.Sum256(c.SAJWKS)
	key := c.ID + ":" + hex.EncodeToString(sum[:]) + ":" + c.SAIssuer + ":" + c.SAAudience
	s.vmu.Lock()
	v, ok := s.verifiers[key]
	s.vmu.Unlock()
	if !ok {
		opts := []satoken.Option{satoken.WithAudience(c.SAAudience)}
		if c.SAIssuer != "" {
			opts = append(opts, satoken.WithIssuer(c.SAIssuer))
		}
		var err error
		if v, err = satoken.NewVerifier(c.SAJWKS, opts...); err != nil {
			s.log.Error("service-account keys of cluster", "cluster", c.Name, "err", err)
			return satoken.Claims{}, &wire.ErrorReply{Code: wire.CodeForbidden, Error: "cluster " + c.Name + " has unusable service-account keys"}
		}
		s.vmu.Lock()
		s.verifiers[key] = v
		s.vmu.Unlock()
	}
	claims, err := v.Verify(tok)
	if err != nil {
		return satoken.Claims{}, &wire.ErrorReply{Code: wire.CodeForbidden, Error: "service-account token refused: " + err.Error()}
	}
	if claims.Pod == "" {
		// The kubelet's tokens are bound to the pod; a long-lived
		// Secret-based token is not what a pull should present.
		return satoken.Claims{}, &wire.ErrorReply{Code: wire.CodeForbidden, Error: "service-account token refused: not bound to a pod"}
	}
	return claims, nil
}

func (s *Service) handleSync(m *nats.Msg) {
	var req wire.SyncRequest
	if e := decode(m, &req); e != nil {
		s.respond(m, wire.SyncReply{ErrorReply: *e})
		return
	}
	ctx, cancel := ctxFor()
	defer cancel()
	s.respond(m, s.Sync(ctx, m.Subject, req))
}

// Sync answers a resync request arriving on subject.
func (s *Service) Sync(ctx context.Context, subject string, req wire.SyncRequest) wire.SyncReply {
	// Read the sequence first: a revocation published while the state is
	// read is then newer than what the agent records, and it resyncs again.
	seq := s.seq.Load()
	n, c, e := s.node(ctx, subject)
	if e != nil {
		return wire.SyncReply{ErrorReply: *e}
	}
	s.contact(ctx, n.ID, req.AgentVersion)
	if len(req.JWKS) > 0 {
		if e := s.proposeKeys(ctx, n, c, req.JWKS, req.Issuer); e != nil {
			return wire.SyncReply{ErrorReply: *e}
		}
	}
	bound, err := s.store.InstallsByCluster(ctx, c.ID)
	if err != nil {
		return wire.SyncReply{ErrorReply: *internal(err)}
	}
	// The same installs install selection considers: a single-workspace
	// cluster never lists another workspace's installs or hosts.
	var installs []store.Install
	for _, in := range bound {
		if c.WorkspaceID == "" || in.WorkspaceID == c.WorkspaceID {
			installs = append(installs, in)
		}
	}
	epochs := map[string]string{}
	wsCreds := map[string][]store.Credential{}
	live := map[string]wire.InstallState{}
	hosts := map[string]bool{}
	for _, in := range installs {
		ep, ok := epochs[in.WorkspaceID]
		if !ok {
			creds, err := s.store.CredentialsByWorkspaceID(ctx, in.WorkspaceID)
			if err != nil {
				return wire.SyncReply{ErrorReply: *internal(err)}
			}
			ep = Epoch(creds)
			epochs[in.WorkspaceID] = ep
			wsCreds[in.WorkspaceID] = creds
		}
		// Disabled installs keep their hosts: see InstallHosts.
		for _, h := range InstallHosts(in, wsCreds[in.WorkspaceID]) {
			hosts[h] = true
		}
		if in.Enabled {
			live[in.ID] = wire.InstallState{Generation: in.Generation, Epoch: ep}
		}
	}
	return wire.SyncReply{Source: s.source, Seq: seq, Installs: live, Hosts: sortedKeys(hosts)}
}

// InstallHosts returns the canonical upstream hosts an install pulls
// from: hosts of its workspace's credentials that its allow-list reaches
// (an empty allow-list reaches them all). Disabled installs and
// credentials count: a node's containerd mirror for the host must outlive
// a pause, or containerd would go to the upstream itself and offer it the
// kubelet's cached (revoked) install token; only deleting the install or
// the credential takes the host off the list.
func InstallHosts(in store.Install, creds []store.Credential) []string {
	var patterns []imageref.Pattern
	for _, r := range in.Repos {
		if p, err := imageref.ParsePattern(r); err == nil {
			patterns = append(patterns, p)
		}
	}
	var out []string
	for _, c := range creds {
		p, err := imageref.ParsePrefix(c.Host)
		if err != nil || slices.Contains(out, p.Host) {
			continue
		}
		reached := len(in.Repos) == 0
		for _, pat := range patterns {
			reached = reached || pat.Host == p.Host
		}
		if reached {
			out = append(out, p.Host)
		}
	}
	return out
}

// sortedKeys returns the set's members in order, never nil.
func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// contact records that a node was heard from; a failure is logged only
// (the node is served either way).
func (s *Service) contact(ctx context.Context, nodeID, version string) {
	if err := s.store.NodeContact(ctx, nodeID, version, time.Now()); err != nil {
		s.log.Warn("record node contact", "node", nodeID, "err", err)
	}
}

// clipVersion bounds the agent version a node reports (its own word, only
// logged) to a short printable string.
func clipVersion(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, v)
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	if v == "" {
		v = "unknown"
	}
	return v
}
