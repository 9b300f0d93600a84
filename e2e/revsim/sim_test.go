package revsim

// The simulation. Each schedule is a seed-derived sequence of steps:
//
//   - ask: an agent asks for an image's credentials (token service of
//     whichever replica the NATS queue group picks); mint: the API of a
//     random replica mints an install token;
//   - revoke an install (disable, or delete and create again), a
//     credential (disable; enable again later), or a node (its agent is
//     replaced by a newly enrolled one in a later step), each through the
//     API of a random live replica;
//   - disconnect an agent from every NATS node (its relays cut), reconnect
//     it;
//   - kill a replica (its NATS connection and store handle close as in a
//     crash), start it again.
//
// After every step the invariant is checked:
//
//  1. Proxy: every token the schedule has seen that is revoked (its
//     install deleted, disabled or at an older generation, its node
//     revoked, its workspace's credential disabled) is refused by the
//     proxy of every live replica (a manifest HEAD, which needs the
//     credential), with no grace at all. Every token that is not revoked
//     is accepted by a random live replica (so the check cannot pass by
//     refusing everything).
//  2. Agents, connected: an agent hands out no revoked token later than
//     pushWindow after the revoke call returned (the window is the push's
//     delivery; DESIGN.md says milliseconds, the bound is generous for a
//     loaded machine). "Revoked" for an agent is as for the proxy, except
//     that a credential disable revokes the tokens issued before it (one
//     issued while it is disabled is refused by the proxy, and the agent
//     may hold it: that is not stale).
//  3. Agents, partitioned: while cut from NATS, an agent may serve a
//     token it held before (revoked meanwhile or not: it cannot know; the
//     proxy refusing it is what protects then, and check 1 covers every
//     such token), and nothing it did not hold.
//  4. Agents, reconnected: once its NATS connection is back, the agent
//     hands out no token revoked during the partition, with no window (its
//     cache waits for the resync).
//
// Seeds: schedule i of a run has seed base+i. A failure prints the seed;
// replay it with -seed N (or PULLGATE_REVSIM_SEED=N):
//
//	go test ./e2e/revsim/ -run TestRevocationSchedules -args -seed N
//
// Set PULLGATE_REVSIM_SCHEDULES (default 3) for more schedules, and
// PULLGATE_TEST_POSTGRES_DSN to run on PostgreSQL instead of one SQLite
// file.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/pkg/wire"
)

var seedFlag = flag.Uint64("seed", 0, "replay the schedule with this seed (also PULLGATE_REVSIM_SEED)")

const (
	replicas   = 3
	stepsPer   = 16
	pushWindow = 2 * time.Second
	// scheduleBudget bounds one schedule's wall time.
	scheduleBudget = 90 * time.Second
)

func envInt(name string, def uint64) uint64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			return n
		}
	}
	return def
}

func TestRevocationSchedules(t *testing.T) {
	seeds := []uint64{}
	replay := *seedFlag
	if replay == 0 {
		replay = envInt("PULLGATE_REVSIM_SEED", 0)
	}
	if replay != 0 {
		seeds = append(seeds, replay)
	} else {
		n := envInt("PULLGATE_REVSIM_SCHEDULES", 3)
		if testing.Short() {
			n = min(n, 1)
		}
		base := envInt("PULLGATE_REVSIM_BASE", 1)
		for i := range n {
			seeds = append(seeds, base+i)
		}
	}
	e := newEnv(t, replicas)
	for i := range 2 {
		for _, repo := range []string{"a", "b"} {
			e.up.PushRandomImage(t, fmt.Sprintf("team-%d/%s", i, repo), "1", 1, 256)
		}
	}
	var st stats
	start := time.Now()
	for i, seed := range seeds {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			s := newSim(t, e, seed, i)
			s.run()
			st.add(s.stats)
		})
		if !ok {
			t.Fatalf("schedule with seed %d failed; replay: go test ./e2e/revsim/ -run TestRevocationSchedules -args -seed %d", seed, seed)
		}
	}
	t.Logf("%d schedules of %d steps in %v: %s", len(seeds), stepsPer, time.Since(start).Round(time.Millisecond), st)
}

// stats are what a run reports.
type stats struct {
	steps, revokes, proxyRefusals, proxyAccepts, agentAsks, staleWhileCut int
	reconnectChecks                                                       int
	maxPushGap                                                            time.Duration
}

func (a *stats) add(b stats) {
	a.steps += b.steps
	a.revokes += b.revokes
	a.proxyRefusals += b.proxyRefusals
	a.proxyAccepts += b.proxyAccepts
	a.agentAsks += b.agentAsks
	a.staleWhileCut += b.staleWhileCut
	a.reconnectChecks += b.reconnectChecks
	a.maxPushGap = max(a.maxPushGap, b.maxPushGap)
}

func (a stats) String() string {
	return fmt.Sprintf("steps=%d revokes=%d revoked-token refusals checked=%d live-token accepts=%d agent asks=%d "+
		"revoked tokens served while partitioned (allowed, refused by every proxy)=%d checks right after a reconnect=%d "+
		"longest gap of a revoked token still handed out by a connected agent (push window %v)=%v",
		a.steps, a.revokes, a.proxyRefusals, a.proxyAccepts, a.agentAsks, a.staleWhileCut, a.reconnectChecks, pushWindow, a.maxPushGap)
}

// tenant is a workspace with a single-workspace cluster and two installs
// (a and b, one repository each) bound to it.
type tenant struct {
	idx          int
	ws           store.Workspace
	cluster      store.Cluster
	join         string
	installs     map[string]string // name -> current install id
	disabled     map[string]bool   // install name -> disabled
	credDisabled bool
	credSince    time.Time
}

func (tn *tenant) image(install string) string {
	return fmt.Sprintf("%s/%s/team-%d/%s:1", hubHost, upstreamHost, tn.idx, install)
}

func (tn *tenant) repoPath(install string) string {
	return fmt.Sprintf("/v2/%s/team-%d/%s/manifests/1", upstreamHost, tn.idx, install)
}

// simAgent is a real agent of a tenant's cluster behind relays to every
// NATS node.
type simAgent struct {
	tn    *tenant
	run   *agenttest.Running
	gates []*gate
	cut   bool
	cutAt time.Time
	// partitions are the [cut, reconnected] intervals so far.
	partitions [][2]time.Time
	nodeID     string
	revoked    bool
	// held: tokens this agent handed out (all it can hold, as it fetches
	// only on a request).
	held map[string]bool
}

// tokInfo is what the simulation knows of a token it saw.
type tokInfo struct {
	claims token.Claims
	tn     *tenant
	name   string // install name
	// credDeadSince: the token was issued before a credential disable
	// that is still in force (zero: not).
	credDeadSince time.Time
}

// instState is the model of one install id.
type instState struct {
	gone      bool  // deleted (forever)
	disabled  bool  // now
	minGen    int64 // tokens below this generation are revoked
	deadSince time.Time
}

type sim struct {
	t      *testing.T
	e      *env
	rng    *rand.Rand
	seed   uint64
	ctx    context.Context
	trace  []string
	stats  stats
	tn     []*tenant
	agents []*simAgent
	tokens map[string]*tokInfo
	insts  map[string]*instState // by install id
	nodes  map[string]time.Time  // revoked node id -> when
}

func newSim(t *testing.T, e *env, seed uint64, idx int) *sim {
	ctx, cancel := context.WithTimeout(context.Background(), scheduleBudget)
	t.Cleanup(cancel)
	s := &sim{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, ctx: ctx,
		tokens: map[string]*tokInfo{}, insts: map[string]*instState{}, nodes: map[string]time.Time{}}
	// Every replica is up at the start of a schedule.
	for _, r := range e.reps {
		if !r.isUp() {
			if err := r.start(); err != nil {
				t.Fatalf("restart replica %d: %v", r.id, err)
			}
		}
	}
	for i := range 2 {
		s.tn = append(s.tn, s.newTenant(fmt.Sprintf("s%d-%d", seed, i), i))
	}
	for _, tn := range s.tn {
		s.agents = append(s.agents, s.startAgent(tn))
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	var logs strings.Builder
	if os.Getenv("REVSIM_LOG") != "" {
		for _, a := range s.agents {
			l := a.run.Logs.String()
			fmt.Fprintf(&logs, "\nagent %s log (tail):\n%s", a.tn.ws.Name, l[max(0, len(l)-6000):])
		}
	}
	s.t.Fatalf("seed %d: %s\nsteps:\n  %s%s", s.seed, fmt.Sprintf(format, args...), strings.Join(s.trace, "\n  "), logs.String())
}

func (s *sim) newTenant(name string, idx int) *tenant {
	ctx := s.ctx
	ws, err := s.e.admin.CreateWorkspace(ctx, name)
	if err != nil {
		s.fatalf("create workspace: %v", err)
	}
	if err := s.e.credentialFor(ctx, ws); err != nil {
		s.fatalf("create credential: %v", err)
	}
	c, err := s.e.admin.CreateCluster(ctx, store.Cluster{Name: name, WorkspaceID: ws.ID}, []byte("unused"))
	if err != nil {
		s.fatalf("create cluster: %v", err)
	}
	join, hash := natsauth.NewJoinToken(c.ID)
	if err := s.e.admin.RotateJoinToken(ctx, name, hash); err != nil {
		s.fatalf("join token: %v", err)
	}
	tn := &tenant{idx: idx, ws: ws, cluster: c, join: join, installs: map[string]string{}, disabled: map[string]bool{}}
	for _, n := range []string{"a", "b"} {
		s.createInstall(tn, n, s.e.reps[0])
	}
	return tn
}

func (s *sim) createInstall(tn *tenant, name string, r *replica) {
	var in api.Install
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/installs", tn.ws.Name),
		api.CreateInstallRequest{Name: name, Cluster: tn.cluster.Name, Repos: []string{fmt.Sprintf("%s/team-%d/%s", upstreamHost, tn.idx, name)}},
		http.StatusCreated, &in)
	stored, err := s.e.admin.GetInstall(s.ctx, tn.ws.Name, name)
	if err != nil {
		s.fatalf("read install %s: %v", name, err)
	}
	tn.installs[name] = stored.ID
	s.insts[stored.ID] = &instState{minGen: in.Generation}
}

func (s *sim) startAgent(tn *tenant) *simAgent {
	a := &simAgent{tn: tn, held: map[string]bool{}}
	var urls []string
	for _, ns := range s.e.nats {
		g := newGate(s.t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
		a.gates = append(a.gates, g)
		urls = append(urls, g.url())
	}
	// Each agent lists the relays in its own order: agents land on
	// different NATS nodes.
	s.rng.Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	a.run = agenttest.Start(s.t, agenttest.Config{NATSURL: strings.Join(urls, ","), Join: jointoken.Static(tn.join),
		Options: []agent.Option{agent.WithNodeName(fmt.Sprintf("node-%s", tn.ws.Name))}})
	a.run.WaitReady(s.t)
	id, _ := a.run.Agent.Identity()
	a.nodeID = id.NodeID
	return a
}

// apiCall sends an API request to replica r and decodes the answer.
func (s *sim) apiCall(r *replica, method, path string, body any, want int, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req := httptest.NewRequestWithContext(s.ctx, method, path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp := r.do(req)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.fatalf("%s %s via replica %d: %d %s (want %d)", method, path, r.id, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

func (s *sim) liveReplicas() []*replica {
	var out []*replica
	for _, r := range s.e.reps {
		if r.isUp() {
			out = append(out, r)
		}
	}
	return out
}

func (s *sim) anyReplica() *replica {
	live := s.liveReplicas()
	return live[s.rng.IntN(len(live))]
}

func (s *sim) note(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
}

// run plays the schedule.
func (s *sim) run() {
	defer func() {
		for _, a := range s.agents {
			_ = a.run.Stop()
		}
	}()
	for step := range stepsPer {
		if s.ctx.Err() != nil {
			s.fatalf("schedule ran past its budget of %v", scheduleBudget)
		}
		s.step(step)
		s.stats.steps++
		s.check()
	}
}

// step picks and runs one action.
func (s *sim) step(n int) {
	type action struct {
		w  int
		ok bool
		f  func()
	}
	tn := s.tn[s.rng.IntN(len(s.tn))]
	inst := []string{"a", "b"}[s.rng.IntN(2)]
	ag := s.agents[s.rng.IntN(len(s.agents))]
	live := s.liveReplicas()
	var down []*replica
	for _, r := range s.e.reps {
		if !r.isUp() {
			down = append(down, r)
		}
	}
	actions := []action{
		{5, true, func() { s.ask(ag, inst) }},
		{1, !tn.disabled[inst], func() { s.mint(tn, inst) }},
		{2, !tn.disabled[inst], func() { s.disableInstall(tn, inst) }},
		{1, tn.disabled[inst], func() { s.enableInstall(tn, inst) }},
		{1, true, func() { s.deleteInstall(tn, inst) }},
		{1, !tn.credDisabled, func() { s.disableCredential(tn) }},
		{1, tn.credDisabled, func() { s.enableCredential(tn) }},
		{1, !ag.revoked, func() { s.revokeNode(ag) }},
		{2, ag.revoked && !ag.cut, func() { s.replaceAgent(ag) }},
		{2, !ag.cut, func() { s.disconnect(ag) }},
		{3, ag.cut, func() { s.reconnect(ag) }},
		{1, len(live) > 1, func() { s.kill(live[s.rng.IntN(len(live))]) }},
		{2, len(down) > 0, func() { s.restart(down[s.rng.IntN(max(1, len(down)))]) }},
	}
	total := 0
	for _, a := range actions {
		if a.ok {
			total += a.w
		}
	}
	pick := s.rng.IntN(total)
	for _, a := range actions {
		if !a.ok {
			continue
		}
		if pick < a.w {
			a.f()
			return
		}
		pick -= a.w
	}
}

// ask has the agent hand out credentials for the tenant's image; what it
// hands out is checked in check.
func (s *sim) ask(a *simAgent, inst string) {
	s.note("ask agent %s install %s (cut=%v revoked=%v)", a.tn.ws.Name, inst, a.cut, a.revoked)
	s.askOne(a, inst)
}

// askOne asks and records the answer. It fails the schedule on a revoked
// token the agent must not hand out, and returns one that is still within
// the push window (empty if none).
func (s *sim) askOne(a *simAgent, inst string) (tolerated string) {
	s.stats.agentAsks++
	cr, err := a.run.Ask(wire.CredentialsRequest{Image: a.tn.image(inst)})
	if err != nil {
		return "" // nothing handed out
	}
	tok := cr.Password
	info := s.observe(tok, a.tn, inst)
	if a.cut {
		if !a.held[tok] {
			s.fatalf("agent %s handed out a token it did not hold while cut off from NATS", a.tn.ws.Name)
		}
		if _, dead := s.deadAtAgent(info); dead {
			s.stats.staleWhileCut++
		}
		return ""
	}
	a.held[tok] = true
	if since, dead := s.deadAtAgent(info); dead {
		if !s.tolerated(a, since) {
			s.fatalf("connected agent %s handed out a revoked token of install %s (claims %+v), revoked %v ago",
				a.tn.ws.Name, inst, info.claims, time.Since(since).Round(time.Millisecond))
		}
		s.stats.maxPushGap = max(s.stats.maxPushGap, time.Since(since))
		return tok
	}
	return ""
}

// tolerated says whether a connected agent may still hand out a token
// revoked at since: only within pushWindow of the revoke, and not at all
// if the revoke happened while the agent was cut off (its resync after
// the reconnect must have covered it before it serves anything).
func (s *sim) tolerated(a *simAgent, since time.Time) bool {
	if time.Since(since) > pushWindow {
		return false
	}
	for _, p := range a.partitions {
		if !since.Before(p[0]) && !since.After(p[1]) {
			return false
		}
	}
	return true
}

// observe records a token (verified with the hub's key: an agent hands
// out only what the hub signed).
func (s *sim) observe(tok string, tn *tenant, inst string) *tokInfo {
	if info, ok := s.tokens[tok]; ok {
		return info
	}
	keys := token.NewKeyring()
	keys.Add(s.e.key, false)
	claims, err := keys.Verify(tok)
	if err != nil {
		s.fatalf("a token that does not verify: %v", err)
	}
	if claims.Workspace != tn.ws.ID {
		s.fatalf("token for workspace %s handed out for %s", claims.Workspace, tn.ws.Name)
	}
	info := &tokInfo{claims: claims, tn: tn, name: inst}
	s.tokens[tok] = info
	return info
}

// deadAtProxy says whether the proxy must refuse the token, and since
// when it is revoked.
func (s *sim) deadAtProxy(i *tokInfo) (time.Time, bool) {
	if since, ok := s.installDead(i); ok {
		return since, true
	}
	if i.tn.credDisabled {
		return i.tn.credSince, true
	}
	return time.Time{}, false
}

// deadAtAgent: as deadAtProxy, but a credential disable revokes only the
// tokens issued before it.
func (s *sim) deadAtAgent(i *tokInfo) (time.Time, bool) {
	if since, ok := s.installDead(i); ok {
		return since, true
	}
	if !i.credDeadSince.IsZero() {
		return i.credDeadSince, true
	}
	return time.Time{}, false
}

func (s *sim) installDead(i *tokInfo) (time.Time, bool) {
	if since, ok := s.nodes[i.claims.Node]; ok && i.claims.Node != "" {
		return since, true
	}
	st := s.insts[i.claims.Install]
	if st == nil {
		s.fatalf("token of an install the schedule never created: %s", i.claims.Install)
	}
	if st.gone || st.disabled || i.claims.Generation < st.minGen {
		return st.deadSince, true
	}
	return time.Time{}, false
}

func (s *sim) mint(tn *tenant, inst string) {
	r := s.anyReplica()
	s.note("mint %s/%s via replica %d", tn.ws.Name, inst, r.id)
	var tok api.Token
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/installs/%s/tokens", tn.ws.Name, inst), api.MintTokenRequest{}, http.StatusCreated, &tok)
	s.observe(tok.Token, tn, inst)
}

func (s *sim) disableInstall(tn *tenant, inst string) {
	r := s.anyReplica()
	s.note("disable install %s/%s via replica %d", tn.ws.Name, inst, r.id)
	var in api.Install
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/installs/%s/disable", tn.ws.Name, inst), nil, http.StatusOK, &in)
	st := s.insts[tn.installs[inst]]
	st.disabled, st.minGen, st.deadSince = true, in.Generation, time.Now()
	tn.disabled[inst] = true
	s.stats.revokes++
}

func (s *sim) enableInstall(tn *tenant, inst string) {
	r := s.anyReplica()
	s.note("enable install %s/%s via replica %d", tn.ws.Name, inst, r.id)
	var in api.Install
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/installs/%s/enable", tn.ws.Name, inst), nil, http.StatusOK, &in)
	st := s.insts[tn.installs[inst]]
	// Tokens from before the disable stay revoked (older generation).
	st.disabled = false
	st.minGen = max(st.minGen, in.Generation)
	tn.disabled[inst] = false
}

func (s *sim) deleteInstall(tn *tenant, inst string) {
	r := s.anyReplica()
	s.note("delete and recreate install %s/%s via replica %d", tn.ws.Name, inst, r.id)
	s.apiCall(r, http.MethodDelete, fmt.Sprintf("/api/v1/workspaces/%s/installs/%s", tn.ws.Name, inst), nil, http.StatusNoContent, nil)
	st := s.insts[tn.installs[inst]]
	st.gone, st.deadSince = true, time.Now()
	s.stats.revokes++
	s.createInstall(tn, inst, s.anyReplica())
	tn.disabled[inst] = false
}

func (s *sim) disableCredential(tn *tenant) {
	r := s.anyReplica()
	s.note("disable credential of %s via replica %d", tn.ws.Name, r.id)
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/registries/upstream/disable", tn.ws.Name), nil, http.StatusOK, nil)
	now := time.Now()
	tn.credDisabled, tn.credSince = true, now
	for _, i := range s.tokens {
		if i.tn == tn && i.credDeadSince.IsZero() {
			i.credDeadSince = now
		}
	}
	s.stats.revokes++
}

func (s *sim) enableCredential(tn *tenant) {
	r := s.anyReplica()
	s.note("enable credential of %s via replica %d", tn.ws.Name, r.id)
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/workspaces/%s/registries/upstream/enable", tn.ws.Name), nil, http.StatusOK, nil)
	// The workspace's credential state is what it was before the disable:
	// tokens issued before it are good again (the proxy checks the
	// credential per request; agents compare the credential epoch).
	tn.credDisabled = false
	for _, i := range s.tokens {
		if i.tn == tn {
			i.credDeadSince = time.Time{}
		}
	}
}

func (s *sim) revokeNode(a *simAgent) {
	r := s.anyReplica()
	s.note("revoke node of agent %s via replica %d", a.tn.ws.Name, r.id)
	s.apiCall(r, http.MethodPost, fmt.Sprintf("/api/v1/clusters/%s/nodes/%s/revoke", a.tn.cluster.Name, a.nodeID), nil, http.StatusOK, nil)
	s.nodes[a.nodeID] = time.Now()
	a.revoked = true
	s.stats.revokes++
}

// replaceAgent stops an agent whose node was revoked (once check has seen
// it serve nothing revoked) and enrols a new node in its place.
func (s *sim) replaceAgent(a *simAgent) {
	s.note("replace revoked agent %s with a newly enrolled node", a.tn.ws.Name)
	if err := a.run.Stop(); err != nil {
		s.fatalf("stop agent: %v", err)
	}
	n := s.startAgent(a.tn)
	*a = *n
}

func (s *sim) disconnect(a *simAgent) {
	s.note("disconnect agent %s from every NATS node", a.tn.ws.Name)
	for _, g := range a.gates {
		g.cut()
	}
	a.cut, a.cutAt = true, time.Now()
}

// reconnect restores the agent's relays and waits until its NATS
// connection is up again; check then asks it at once.
func (s *sim) reconnect(a *simAgent) {
	s.note("reconnect agent %s", a.tn.ws.Name)
	for _, g := range a.gates {
		g.restore()
	}
	a.cut = false
	deadline := time.Now().Add(20 * time.Second)
	// A revoked node is refused by the NATS server (auth callout): it must
	// learn that and serve nothing. Any other agent must get its
	// connection back.
	for (a.revoked && !a.run.Agent.CacheStatus().Refused) || (!a.revoked && !s.nodeConnected(a.nodeID)) {
		if time.Now().After(deadline) {
			s.fatalf("agent %s (node revoked: %v) did not reconnect or learn its refusal within 20s", a.tn.ws.Name, a.revoked)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.partitions = append(a.partitions, [2]time.Time{a.cutAt, time.Now()})
	s.stats.reconnectChecks++
}

// nodeConnected reports whether a NATS server of the cluster has a client
// connection authenticated as the node.
func (s *sim) nodeConnected(node string) bool {
	for _, ns := range s.e.nats {
		cz, err := ns.Connz(&natsserver.ConnzOptions{Username: true, Limit: 1 << 16})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.AuthorizedUser == node {
				return true
			}
		}
	}
	return false
}

func (s *sim) kill(r *replica) {
	s.note("kill replica %d", r.id)
	r.kill()
}

func (s *sim) restart(r *replica) {
	s.note("restart replica %d", r.id)
	if err := r.start(); err != nil {
		s.fatalf("restart replica %d: %v", r.id, err)
	}
}

// check verifies the invariant after a step.
func (s *sim) check() {
	s.checkProxies()
	s.checkAgents()
}

func (s *sim) checkProxies() {
	live := s.liveReplicas()
	for tok, i := range s.tokens {
		if _, dead := s.deadAtProxy(i); dead {
			for _, r := range live {
				if code := s.pull(r, i, tok); code == http.StatusOK {
					s.fatalf("replica %d accepted a revoked token (install %s/%s, claims %+v)", r.id, i.tn.ws.Name, i.name, i.claims)
				} else if code != http.StatusUnauthorized && code != http.StatusForbidden {
					s.fatalf("replica %d answered %d for a revoked token, want 401 (token) or 403 (credential disabled)", r.id, code)
				}
				s.stats.proxyRefusals++
			}
			continue
		}
		r := live[s.rng.IntN(len(live))]
		if code := s.pull(r, i, tok); code != http.StatusOK {
			s.fatalf("replica %d answered %d for a live token (install %s/%s, claims %+v)", r.id, code, i.tn.ws.Name, i.name, i.claims)
		}
		s.stats.proxyAccepts++
	}
}

// pull sends a manifest HEAD for the token's repository to the replica's
// proxy: authorisation, allow-list and credential all run.
func (s *sim) pull(r *replica, i *tokInfo, tok string) int {
	req := httptest.NewRequestWithContext(s.ctx, http.MethodHead, "http://"+hubHost+i.tn.repoPath(i.name), nil)
	req.SetBasicAuth(wire.Username, tok)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp := r.do(req)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *sim) checkAgents() {
	for _, a := range s.agents {
		for _, inst := range []string{"a", "b"} {
			for s.askOne(a, inst) != "" {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
