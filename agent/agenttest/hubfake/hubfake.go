// Package hubfake is a stand-in for the hub's side of the node control
// plane, for agent and helper tests: a real embedded NATS server whose
// authentication follows hub/natsauth's rules (enrolling users limited to
// their cluster's enrol subject and own inbox; nodes to their own token and
// sync subjects, their cluster's revocations and their own inbox; revoked
// nodes refused), and a responder implementing the pkg/wire contract
// (enrol, token, sync, revocation pushes) over in-memory state.
//
// It was written before hub/tokensvc existed and keeps the agent and helper
// tests fast and deterministic (state changes without a store, lost pushes,
// sequence gaps, a paused or slow hub, NATS restarts on the same port).
// Everything that talks to it goes through pkg/wire only, so pointing a
// test at the real hub (hub/natsauth + hub/tokensvc) changes its set-up,
// not its assertions; e2e/nodeside_test.go runs the same paths against the
// real hub processes.
package hubfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Cluster is a cluster with its join token.
type Cluster struct {
	ID, Name  string
	JoinToken string
	Shared    bool
}

// Node is an enrolled node.
type Node struct {
	ID, Secret, ClusterID, Name string
	Revoked                     bool
}

// Install is one install: it serves images whose "host/path" starts with
// one of Repos, for pods in Namespace when the cluster is shared.
type Install struct {
	ID, Name, Workspace, ClusterID string
	Repos                          []string
	Namespace                      string
	Registry                       string // auth key; default: the image's host
	Generation                     int64
	Epoch                          string
}

// Hub is the fake hub.
type Hub struct {
	t        testing.TB
	password string

	mu        sync.Mutex
	srv       *natsserver.Server
	port      int
	nc        *nats.Conn
	clusters  map[string]*Cluster
	nodes     map[string]*Node
	installs  map[string]*Install
	issued    map[string]Install // token → install state when issued
	clientIDs map[string][]uint64
	seq       uint64
	source    string
	ttl       time.Duration
	delay     time.Duration
	syncDelay time.Duration
	paused    bool
	omitHosts bool
	jwks      []byte
	issuer    string
	rejectKey bool
	n         int

	AuthFailures  atomic.Int64 // refused NATS connections
	TokenRequests atomic.Int64
	SyncRequests  atomic.Int64
	EnrolRequests atomic.Int64
}

// HubHost is the fake hub's host in path-prefix images
// ("pullgate-hub.test/ghcr.io/org/app"): such images are answered with the
// hub as the auth key (TokenReply.Hub), like the real hub does.
const HubHost = "pullgate-hub.test"

// SAToken is the fake service-account token of a pod's service account;
// the fake hub "verifies" it by its form.
func SAToken(namespace, sa string) string { return "satoken." + namespace + "." + sa }

// New starts a NATS server on a free port and the fake hub on it. Both
// stop at the end of the test.
func New(t testing.TB) *Hub {
	h := &Hub{t: t, password: randomHex(16), clusters: map[string]*Cluster{}, nodes: map[string]*Node{},
		installs: map[string]*Install{}, issued: map[string]Install{}, clientIDs: map[string][]uint64{}, ttl: 10 * time.Minute,
		source: randomHex(4)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	h.StartNATS()
	nc, err := nats.Connect(h.URL(), nats.UserInfo("hub", h.password), nats.Name("hubfake"),
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(-1),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	h.nc = nc
	for subj, f := range map[string]nats.MsgHandler{
		wire.EnrolSubjectAll: h.enrol, wire.TokenSubjectAll: h.token, wire.SyncSubjectAll: h.sync,
	} {
		if _, err := nc.QueueSubscribe(subj, wire.QueueGroup, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		h.StopNATS()
	})
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// URL is the NATS URL.
func (h *Hub) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", h.port) }

// StartNATS (re)starts the NATS server on the same port.
func (h *Hub) StartNATS() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv != nil {
		return
	}
	opts := &natsserver.Options{Host: "127.0.0.1", Port: h.port, NoLog: true, NoSigs: true,
		CustomClientAuthentication: auth{h}}
	var srv *natsserver.Server
	var err error
	for i := 0; i < 100; i++ { // the port may linger briefly after a stop
		if srv, err = natsserver.NewServer(opts); err == nil {
			go srv.Start()
			if srv.ReadyForConnections(5 * time.Second) {
				break
			}
			srv.Shutdown()
			err = fmt.Errorf("nats server not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("start nats: %v", err)
	}
	h.srv = srv
}

// StopNATS shuts the NATS server down (every client is disconnected).
func (h *Hub) StopNATS() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// WaitHubConnected waits until the fake hub's own connection is back.
func (h *Hub) WaitHubConnected(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if h.nc.IsConnected() {
			return h.nc.Flush() == nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// SetTTL sets the lifetime of issued tokens.
func (h *Hub) SetTTL(d time.Duration) { h.mu.Lock(); h.ttl = d; h.mu.Unlock() }

// SetTokenDelay makes token replies wait (to widen races in tests).
func (h *Hub) SetTokenDelay(d time.Duration) { h.mu.Lock(); h.delay = d; h.mu.Unlock() }

// SetSyncDelay makes sync replies wait (to widen the stale window).
func (h *Hub) SetSyncDelay(d time.Duration) { h.mu.Lock(); h.syncDelay = d; h.mu.Unlock() }

// JWKS is the last key set an agent offered on sync.
func (h *Hub) JWKS() []byte { h.mu.Lock(); defer h.mu.Unlock(); return h.jwks }

// Issuer is the issuer offered with the last key set.
func (h *Hub) Issuer() string { h.mu.Lock(); defer h.mu.Unlock(); return h.issuer }

// RejectJWKS makes syncs that offer keys fail as invalid.
func (h *Hub) RejectJWKS(r bool) { h.mu.Lock(); h.rejectKey = r; h.mu.Unlock() }

// Pause makes the hub stop answering token and sync requests (they time
// out), as when the hub is down but NATS is up.
func (h *Hub) Pause(p bool) { h.mu.Lock(); h.paused = p; h.mu.Unlock() }

// AddCluster creates a cluster and returns it with its join token.
func (h *Hub) AddCluster(name string, shared bool) Cluster {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &Cluster{ID: "cl_" + randomHex(6), Name: name, Shared: shared}
	c.JoinToken = wire.JoinTokenPrefix + c.ID + "." + randomHex(20)
	h.clusters[c.ID] = c
	return *c
}

// RotateJoinToken gives the cluster a new join token.
func (h *Hub) RotateJoinToken(clusterID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clusters[clusterID]
	c.JoinToken = wire.JoinTokenPrefix + c.ID + "." + randomHex(20)
	return c.JoinToken
}

// OmitHosts makes sync replies carry no upstream host list (an older hub).
func (h *Hub) OmitHosts(o bool) { h.mu.Lock(); h.omitHosts = o; h.mu.Unlock() }

// AddInstallNotify adds an install and pushes a change notice naming it,
// as the hub does when an install is created or enabled.
func (h *Hub) AddInstallNotify(in Install) Install {
	in = h.AddInstall(in)
	h.revoke(true, func(h *Hub, r *wire.Revocation) { r.Installs = []string{in.ID} })
	return in
}

// AddInstall adds an install; ID, Generation and Epoch are filled in.
func (h *Hub) AddInstall(in Install) Install {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in.ID == "" {
		in.ID = "in_" + randomHex(6)
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	in.Generation, in.Epoch = 1, "e1"
	cp := in
	h.installs[in.ID] = &cp
	return in
}

// Nodes lists the enrolled nodes.
func (h *Hub) Nodes() []Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Node
	for _, n := range h.nodes {
		out = append(out, *n)
	}
	return out
}

// Valid reports whether an issued token is still good at the hub (its
// install exists in the same state): what the hub proxy would check.
func (h *Hub) Valid(token string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was, ok := h.issued[token]
	if !ok {
		return false
	}
	in := h.installs[was.ID]
	return in != nil && in.Generation == was.Generation && in.Epoch == was.Epoch
}

// Revocation changes state and, when publish is set, pushes the
// revocation (otherwise the push is "lost"). It returns the message.
type change func(h *Hub, r *wire.Revocation)

func (h *Hub) revoke(publish bool, f change) wire.Revocation {
	h.mu.Lock()
	h.seq++
	r := wire.Revocation{Source: h.source, Seq: h.seq, Time: time.Now().UTC()}
	f(h, &r)
	var clusters []string
	for id := range h.clusters {
		clusters = append(clusters, id)
	}
	h.mu.Unlock()
	if publish {
		h.Publish(r, clusters...)
	}
	return r
}

// DeleteInstall deletes an install.
func (h *Hub) DeleteInstall(id string, publish bool) wire.Revocation {
	return h.revoke(publish, func(h *Hub, r *wire.Revocation) {
		delete(h.installs, id)
		r.Installs = []string{id}
	})
}

// DisableInstall bumps an install's generation (its tokens die).
func (h *Hub) DisableInstall(id string, publish bool) wire.Revocation {
	return h.revoke(publish, func(h *Hub, r *wire.Revocation) {
		h.installs[id].Generation++
		r.Installs = []string{id}
	})
}

// RevokeWorkspace changes the epoch of a workspace's installs (a
// credential was disabled).
func (h *Hub) RevokeWorkspace(ws string, publish bool) wire.Revocation {
	return h.revoke(publish, func(h *Hub, r *wire.Revocation) {
		for _, in := range h.installs {
			if in.Workspace == ws {
				in.Epoch = "e" + randomHex(4)
			}
		}
		r.Workspaces = []string{ws}
	})
}

// RevokeNode revokes a node and disconnects it.
func (h *Hub) RevokeNode(nodeID string, publish bool) wire.Revocation {
	r := h.revoke(publish, func(h *Hub, r *wire.Revocation) {
		h.nodes[nodeID].Revoked = true
		r.Nodes = []string{nodeID}
	})
	h.kick(nodeID)
	return r
}

// DeleteCluster deletes a cluster: its nodes are revoked.
func (h *Hub) DeleteCluster(clusterID string, publish bool) wire.Revocation {
	var kick []string
	r := h.revoke(false, func(h *Hub, r *wire.Revocation) {
		r.Cluster = true
		for _, n := range h.nodes {
			if n.ClusterID == clusterID {
				n.Revoked = true
				kick = append(kick, n.ID)
			}
		}
	})
	if publish {
		h.Publish(r, clusterID)
	}
	h.mu.Lock()
	delete(h.clusters, clusterID)
	h.mu.Unlock()
	for _, n := range kick {
		h.kick(n)
	}
	return r
}

// RestartHubProcess simulates a hub restart: a new source, sequence from 0.
func (h *Hub) RestartHubProcess() { h.mu.Lock(); h.source, h.seq = randomHex(4), 0; h.mu.Unlock() }

// Source is the current hub process's revocation source.
func (h *Hub) Source() string { h.mu.Lock(); defer h.mu.Unlock(); return h.source }

// SkipSeq advances the sequence without publishing (a lost message).
func (h *Hub) SkipSeq() { h.mu.Lock(); h.seq++; h.mu.Unlock() }

// Publish pushes a revocation to the clusters.
func (h *Hub) Publish(r wire.Revocation, clusterIDs ...string) {
	data, _ := json.Marshal(r)
	for _, c := range clusterIDs {
		_ = h.nc.Publish(wire.RevokeSubject(c), data) // fails at once while NATS is down: the push is lost
	}
	h.flush()
}

// PublishRaw pushes arbitrary bytes on a cluster's revocation subject.
func (h *Hub) PublishRaw(clusterID string, data []byte) {
	_ = h.nc.Publish(wire.RevokeSubject(clusterID), data)
	h.flush()
}

func (h *Hub) flush() {
	if h.nc.IsConnected() {
		_ = h.nc.FlushTimeout(2 * time.Second)
	}
}

func (h *Hub) kick(user string) {
	h.mu.Lock()
	srv, ids := h.srv, h.clientIDs[user]
	delete(h.clientIDs, user)
	h.mu.Unlock()
	for _, id := range ids {
		if srv != nil {
			_ = srv.DisconnectClientByID(id)
		}
	}
}

func respond(m *nats.Msg, v any) {
	data, _ := json.Marshal(v)
	_ = m.Respond(data)
}

func (h *Hub) enrol(m *nats.Msg) {
	h.EnrolRequests.Add(1)
	clusterID, err := wire.ParseEnrolSubject(m.Subject)
	if err != nil {
		respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Error: err.Error(), Code: wire.CodeInvalid}})
		return
	}
	var req wire.EnrolRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Error: "malformed enrol request", Code: wire.CodeInvalid}})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clusters[clusterID]
	if c == nil {
		respond(m, wire.EnrolReply{ErrorReply: wire.ErrorReply{Error: "no such cluster", Code: wire.CodeForbidden}})
		return
	}
	n := &Node{ID: "node_" + randomHex(8), Secret: wire.NodeSecretPrefix + randomHex(24), ClusterID: clusterID, Name: req.NodeName}
	h.nodes[n.ID] = n
	respond(m, wire.EnrolReply{NodeID: n.ID, NodeSecret: n.Secret, ClusterID: c.ID, Cluster: c.Name, Shared: c.Shared})
}

func tokenErr(code, msg string) wire.TokenReply {
	return wire.TokenReply{ErrorReply: wire.ErrorReply{Error: msg, Code: code}}
}

func (h *Hub) token(m *nats.Msg) {
	h.TokenRequests.Add(1)
	h.mu.Lock()
	delay, paused := h.delay, h.paused
	h.mu.Unlock()
	if paused {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	clusterID, nodeID, err := wire.ParseNodeSubject(m.Subject)
	if err != nil {
		respond(m, tokenErr(wire.CodeInvalid, err.Error()))
		return
	}
	var req wire.TokenRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(m, tokenErr(wire.CodeInvalid, "malformed token request"))
		return
	}
	var repo, host string
	image, viaHub := strings.CutPrefix(req.Image, HubHost+"/")
	switch {
	case req.Image == HubHost:
		viaHub, repo, host = true, HubHost, HubHost
	case imageref.RegistryOnly(image):
		host, err = imageref.CanonicalHost(image)
		repo = host
	default:
		var r imageref.Repo
		r, _, err = imageref.ParseImage(image)
		repo, host = r.String(), r.Host
	}
	if err != nil {
		respond(m, tokenErr(wire.CodeInvalid, err.Error()))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	node, c := h.nodes[nodeID], h.clusters[clusterID]
	if node == nil || node.Revoked || c == nil || node.ClusterID != clusterID {
		respond(m, tokenErr(wire.CodeForbidden, "node revoked or cluster gone"))
		return
	}
	ns := ""
	if req.ServiceAccountToken != "" {
		parts := strings.Split(req.ServiceAccountToken, ".")
		if len(parts) != 3 || parts[0] != "satoken" {
			respond(m, tokenErr(wire.CodeForbidden, "service-account token refused"))
			return
		}
		ns = parts[1]
	} else if c.Shared {
		respond(m, tokenErr(wire.CodeForbidden, "shared cluster: a service-account token is required"))
		return
	}
	var match []*Install
	for _, in := range h.installs {
		if in.ClusterID != clusterID || (ns != "" && in.Namespace != ns) {
			continue
		}
		for _, p := range in.Repos {
			if repo == p || strings.HasPrefix(repo, p+"/") || (repo == host && strings.HasPrefix(p, host+"/")) || p == host || repo == HubHost {
				match = append(match, in)
				break
			}
		}
	}
	switch len(match) {
	case 0:
		respond(m, tokenErr(wire.CodeNotFound, "no install on this cluster serves "+repo))
		return
	case 1:
	default:
		respond(m, tokenErr(wire.CodeAmbiguous, "several installs serve "+repo))
		return
	}
	in := match[0]
	h.n++
	tok := fmt.Sprintf("pgt1.%s.%d.%s", in.ID, h.n, randomHex(8))
	h.issued[tok] = *in
	reg := in.Registry
	switch {
	case viaHub:
		reg = HubHost
	case reg == "":
		reg = host
	}
	respond(m, wire.TokenReply{Token: tok, ExpiresAt: time.Now().Add(h.ttl).UTC(), Install: in.Name, InstallID: in.ID,
		Workspace: in.Workspace, Generation: in.Generation, Epoch: in.Epoch, Registry: reg, Hub: viaHub})
}

func (h *Hub) sync(m *nats.Msg) {
	h.SyncRequests.Add(1)
	h.mu.Lock()
	delay, paused := h.syncDelay, h.paused
	h.mu.Unlock()
	if paused {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	clusterID, nodeID, err := wire.ParseNodeSubject(m.Subject)
	if err != nil {
		respond(m, wire.SyncReply{ErrorReply: wire.ErrorReply{Error: err.Error(), Code: wire.CodeInvalid}})
		return
	}
	var req wire.SyncRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(m, wire.SyncReply{ErrorReply: wire.ErrorReply{Error: "malformed sync request", Code: wire.CodeInvalid}})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(req.JWKS) > 0 {
		if h.rejectKey {
			respond(m, wire.SyncReply{ErrorReply: wire.ErrorReply{Error: "jwks: rejected", Code: wire.CodeInvalid}})
			return
		}
		h.jwks, h.issuer = req.JWKS, req.Issuer
	}
	if n := h.nodes[nodeID]; n == nil || n.Revoked || h.clusters[clusterID] == nil {
		respond(m, wire.SyncReply{ErrorReply: wire.ErrorReply{Error: "node revoked or cluster gone", Code: wire.CodeForbidden}})
		return
	}
	r := wire.SyncReply{Source: h.source, Seq: h.seq, Installs: map[string]wire.InstallState{}, Hosts: []string{}}
	for _, in := range h.installs {
		if in.ClusterID == clusterID {
			r.Installs[in.ID] = wire.InstallState{Generation: in.Generation, Epoch: in.Epoch}
			for _, repo := range in.Repos {
				host, _, _ := strings.Cut(repo, "/")
				if !slices.Contains(r.Hosts, host) {
					r.Hosts = append(r.Hosts, host)
				}
			}
		}
	}
	slices.Sort(r.Hosts)
	if h.omitHosts {
		r.Hosts = nil
	}
	respond(m, r)
}

// auth decides NATS connections like hub/natsauth.
type auth struct{ h *Hub }

func (a auth) Check(c natsserver.ClientAuthentication) bool {
	ok := a.check(c)
	if !ok {
		a.h.AuthFailures.Add(1)
	}
	return ok
}

func (a auth) check(c natsserver.ClientAuthentication) bool {
	h := a.h
	o := c.GetOpts()
	h.mu.Lock()
	defer h.mu.Unlock()
	allow := func(pub []string, sub []string) bool {
		c.RegisterUser(&natsserver.User{Username: o.Username, Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: pub},
			Subscribe: &natsserver.SubjectPermission{Allow: sub},
		}})
		h.clientIDs[o.Username] = append(h.clientIDs[o.Username], c.GetID())
		return true
	}
	if o.Username == "hub" {
		return o.Password == h.password
	}
	if enrolID, ok := strings.CutPrefix(o.Username, "enrol-"); ok {
		clusterID, _, err := wire.ParseJoinToken(o.Password)
		if err != nil || len(enrolID) < 16 {
			return false
		}
		cl := h.clusters[clusterID]
		if cl == nil || cl.JoinToken != o.Password {
			return false
		}
		return allow([]string{wire.EnrolSubject(clusterID)}, []string{wire.EnrolInboxPrefix(enrolID) + ".>"})
	}
	n := h.nodes[o.Username]
	if n == nil || n.Revoked || n.Secret != o.Password || h.clusters[n.ClusterID] == nil {
		return false
	}
	return allow([]string{wire.TokenSubject(n.ClusterID, n.ID), wire.SyncSubject(n.ClusterID, n.ID)},
		[]string{wire.RevokeSubject(n.ClusterID), wire.InboxPrefix(n.ID) + ".>"})
}
