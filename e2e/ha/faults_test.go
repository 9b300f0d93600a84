//go:build e2e_ha

package ha

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/e2eproc"
)

// TestHA runs the cases in order on one topology (starting it takes a
// while); each case leaves it whole again: every replica, NATS node and
// the database up, installs web and gap enabled.
func TestHA(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	t.Logf("topology up in %v: 3 hubs on PostgreSQL, 3 NATS nodes, registry, 2 agents", time.Since(start).Round(time.Millisecond))
	e.up.PushRandomImage(t, "org/app", "v1", 1, 4096)
	var seen []string // every token handed out, for the log check
	for _, c := range []struct {
		name string
		run  func(t *testing.T, e *env) []string
	}{
		{"AnyReplicaAndRevokeAcrossReplicas", testAnyReplica},
		{"HubPaused", testHubPaused},
		{"HubKilledMidBlob", testHubKilledMidBlob},
		{"NATSNodeDown", testNATSNodeDown},
		{"NATSNodeHung", testNATSNodeHung},
		{"AgentPartitioned", testAgentPartitioned},
		{"PostgresDown", testPostgresDown},
		{"ObjectStoreDown", testObjectStoreDown},
	} {
		if !t.Run(c.name, func(t *testing.T) { seen = append(seen, c.run(t, e)...) }) {
			t.FailNow() // the topology may be broken: later cases would only repeat it
		}
	}
	e.noSecretsIn(seen...)
	t.Logf("suite wall time %v", time.Since(start).Round(time.Millisecond))
}

// Any replica serves a token; a revoke through one replica refuses the
// very next request at another.
func testAnyReplica(t *testing.T, e *env) []string {
	tok := e.agentToken(e.agents[0])
	if tok == "" {
		t.Fatal("agent 1 handed out no token")
	}
	for _, h := range e.hubs {
		if code, body := pull(h, "org/app", "v1", tok); code != http.StatusOK {
			t.Fatalf("%s: %d %s", h.name, code, body)
		}
	}
	const rounds = 20
	var gaps []time.Duration
	toks := []string{tok}
	for i := range rounds {
		a, b := e.hubs[i%3], e.hubs[(i+1)%3]
		if code, body := e.api(a, http.MethodPost, "/api/v1/workspaces/acme/installs/gap/enable"); code != http.StatusOK {
			t.Fatalf("enable at %s: %d %s", a.name, code, body)
		}
		gtok := e.mintToken(b, "gap")
		toks = append(toks, gtok)
		if code, body := pull(b, "org/app", "v1", gtok); code != http.StatusOK {
			t.Fatalf("round %d: fresh token at %s: %d %s", i, b.name, code, body)
		}
		if code, body := e.api(a, http.MethodPost, "/api/v1/workspaces/acme/installs/gap/disable"); code != http.StatusOK {
			t.Fatalf("disable at %s: %d %s", a.name, code, body)
		}
		revoked := time.Now()
		code, body := pull(b, "org/app", "v1", gtok)
		gaps = append(gaps, time.Since(revoked))
		if code != http.StatusUnauthorized || !strings.Contains(body, "disabled") {
			t.Fatalf("round %d: the first request at %s after the revoke at %s returned %d %s, want 401", i, b.name, a.name, code, body)
		}
	}
	slices.Sort(gaps)
	t.Logf("revoke at one replica -> refusal at another: the first request after the revoke is refused in %d/%d rounds; "+
		"time from the revoke's response to the refusal p50 %v p99 %v max %v",
		rounds, rounds, gaps[len(gaps)/2].Round(time.Microsecond), gaps[len(gaps)*99/100].Round(time.Microsecond), gaps[len(gaps)-1].Round(time.Microsecond))
	if code, body := e.api(e.hubs[0], http.MethodPost, "/api/v1/workspaces/acme/installs/gap/enable"); code != http.StatusOK {
		t.Fatalf("enable: %d %s", code, body)
	}
	return toks
}

// A replica hangs (SIGSTOP): its NATS connection stays open, so the
// queue groups still offer it requests. Agents must still get tokens.
func testHubPaused(t *testing.T, e *env) []string {
	h, a := e.hubs[2], e.agents[0]
	if err := h.p.Pause(); err != nil {
		t.Fatal(err)
	}
	defer h.p.Resume() // SIGCONT to a running group changes nothing
	// Until the NATS servers drop it (ping_interval x ping_max of the
	// nats-config block), the queue groups still offer it requests; the
	// agent's retries mostly get past it (measured, not asserted: each
	// attempt has a one in three chance to land on it).
	cold := func() (string, time.Duration) {
		e.cli.Must("", "install", "disable", "-w", "acme", "web")
		waitFor(t, 5*time.Second, "agent 1 dropped its token", func() bool { return e.agentToken(a) == "" })
		e.cli.Must("", "install", "enable", "-w", "acme", "web")
		start := time.Now()
		tok := e.agentToken(a)
		return tok, time.Since(start)
	}
	var toks []string
	pausedAt := time.Now()
	var tried, got int
	for e.hubConnections() != len(e.hubs)-1 {
		if time.Since(pausedAt) > 60*time.Second {
			t.Fatalf("the NATS cluster did not drop the hung %s within 60s", h.name)
		}
		tok, _ := cold()
		tried++
		if tok != "" {
			got++
			toks = append(toks, tok)
		}
	}
	t.Logf("%s paused (SIGSTOP): the NATS cluster dropped its connection after %v; meanwhile %d of %d cold token requests succeeded",
		h.name, time.Since(pausedAt).Round(time.Millisecond), got, tried)
	const rounds = 6
	var lat []time.Duration
	for i := range rounds {
		tok, d := cold()
		if tok == "" {
			t.Fatalf("round %d: agent 1 got no token with %s paused (%v)", i, h.name, d)
		}
		lat = append(lat, d)
		toks = append(toks, tok)
		if code, body := pull(e.hubs[0], "org/app", "v1", tok); code != http.StatusOK {
			t.Fatalf("round %d: %d %s", i, code, body)
		}
	}
	slices.Sort(lat)
	t.Logf("then %d cold tokens from agent 1, p50 %v max %v", rounds, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	h.p.Resume()
	waitFor(t, 30*time.Second, h.name+" back on NATS", func() bool { return e.hubConnections() == len(e.hubs) })
	e2eproc.WaitHTTP(t, "http://"+h.addr+"/readyz", h.p)
	return toks
}

// A replica killed (SIGKILL) in the middle of a 1 GiB blob: the client's
// retry with Range through another replica completes with the right
// digest.
func testHubKilledMidBlob(t *testing.T, e *env) []string {
	const size = 1 << 30
	start := time.Now()
	_, dig := e.up.PushBlobImage(t, "org/big", "v1", size)
	e.bigBlob, e.bigSize = dig.String(), size
	t.Logf("pushed a %d-byte layer to the registry in %v", size, time.Since(start).Round(time.Millisecond))
	tok := e.agentToken(e.agents[0])
	a, b := e.hubs[0], e.hubs[1]
	get := func(h *hub, rng string) *http.Response {
		resp, err := http.DefaultClient.Do(blobRequest(h, "org/big", dig.String(), tok, rng))
		if err != nil {
			t.Fatalf("GET blob at %s: %v", h.name, err)
		}
		return resp
	}
	hash := sha256.New()
	resp := get(a, "")
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("blob at %s: %d, %d bytes", a.name, resp.StatusCode, resp.ContentLength)
	}
	const killAt = 256 << 20
	got, err := io.CopyN(hash, resp.Body, killAt)
	if err != nil {
		t.Fatalf("first %d bytes from %s: %v", killAt, a.name, err)
	}
	a.p.Kill()
	n, err := io.Copy(hash, resp.Body) // what was in flight, then the cut
	resp.Body.Close()
	got += n
	if err == nil || got >= size {
		t.Fatalf("the stream from the killed replica ended cleanly after %d bytes", got)
	}
	t.Logf("%s killed after %d MiB of the blob; the client had %d bytes", a.name, killAt>>20, got)

	retry := time.Now()
	resp = get(b, fmt.Sprintf("bytes=%d-", got))
	defer resp.Body.Close()
	wantRange := fmt.Sprintf("bytes %d-%d/%d", got, size-1, size)
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange || resp.ContentLength != size-got {
		t.Fatalf("Range retry at %s: %d Content-Range %q length %d, want 206 %q", b.name, resp.StatusCode,
			resp.Header.Get("Content-Range"), resp.ContentLength, wantRange)
	}
	n, err = io.Copy(hash, resp.Body)
	if err != nil || got+n != size {
		t.Fatalf("rest from %s: %d bytes, %v", b.name, n, err)
	}
	if sum := "sha256:" + hex.EncodeToString(hash.Sum(nil)); sum != dig.String() {
		t.Fatalf("digest of the resumed pull %s, want %s", sum, dig)
	}
	t.Logf("resumed at %s with Range: %d bytes in %v, digest %s matches", b.name, n, time.Since(retry).Round(time.Millisecond), dig)

	e.startHub(a, true)
	// The restarted replica serves the blob (its partial cache entry was
	// not committed: the tail it serves must be the blob's).
	resp2 := get(a, fmt.Sprintf("bytes=%d-", size-4096))
	tail, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusPartialContent || len(tail) != 4096 {
		t.Fatalf("restarted %s: %d, %d bytes", a.name, resp2.StatusCode, len(tail))
	}
	return []string{tok}
}

// connectedTo is the NATS node holding the node id's connection, or nil.
func (e *env) connectedTo(id string) *natsNode {
	for _, n := range e.nats {
		if n.holds(id) {
			return n
		}
	}
	return nil
}

// One NATS node stops: the agents on it reconnect to another, and
// revocations still arrive.
func testNATSNodeDown(t *testing.T, e *env) []string {
	a := e.agents[0]
	id := nodeID(t, a)
	tok := e.agentToken(a)
	var on *natsNode
	waitFor(t, 10*time.Second, "agent 1 on a NATS node", func() bool { on = e.connectedTo(id); return on != nil })
	on.p.Kill()
	took := waitFor(t, 30*time.Second, "agent 1 reconnected to another node", func() bool {
		n := e.connectedTo(id)
		return n != nil && n != on
	})
	t.Logf("NATS node %s killed: agent 1 on %s again after %v", on.name, e.connectedTo(id).name, took.Round(time.Millisecond))
	for _, ag := range e.agents {
		waitFor(t, 30*time.Second, ag.Name+" connected", func() bool { return ag.Metric(t, "pullgate_agent_nats_connected") == "1" })
	}

	// A revoke through the third replica reaches both agents over the
	// two remaining nodes.
	toks := []string{tok, e.agentToken(e.agents[1])}
	if _, err := e.cli.Run("", "--hub", "http://"+e.hubs[2].addr, "install", "disable", "-w", "acme", "web"); err != nil {
		t.Fatal(err)
	}
	for i, ag := range e.agents {
		d := waitFor(t, 5*time.Second, ag.Name+" dropped the revoked token", func() bool { return e.agentToken(ag) == "" })
		t.Logf("%s stopped handing out the revoked token %v after the revoke returned", ag.Name, d.Round(time.Millisecond))
		for _, h := range e.hubs {
			if code, _ := pull(h, "org/app", "v1", toks[i]); code != http.StatusUnauthorized {
				t.Fatalf("revoked token at %s: %d", h.name, code)
			}
		}
	}
	e.cli.Must("", "install", "enable", "-w", "acme", "web")
	// A cold token with the node still down.
	cold := time.Now()
	fresh := e.agentToken(a)
	t.Logf("cold token from agent 1 with NATS node %s down: %v", on.name, time.Since(cold).Round(time.Millisecond))
	if fresh == "" || fresh == tok {
		t.Fatal("agent 1: no fresh token after the install was enabled again")
	}
	if code, body := pull(e.hubs[0], "org/app", "v1", fresh); code != http.StatusOK {
		t.Fatalf("fresh token: %d %s", code, body)
	}
	on.start(e.t, e2eproc.NATSServerBinary(t)) // on the suite's t: it outlives this case
	for _, n := range e.nats {
		n.waitRoutes(t, 2)
	}
	return append(toks, fresh)
}

// One NATS node hangs (SIGSTOP: connections open, nothing answered): the
// other nodes drop its routes, hubs and agents on it leave it for another
// node after their pings go unanswered, and revocations arrive again.
func testNATSNodeHung(t *testing.T, e *env) []string {
	a := e.agents[0]
	id := nodeID(t, a)
	var on *natsNode
	waitFor(t, 10*time.Second, "agent 1 on a NATS node", func() bool { on = e.connectedTo(id); return on != nil })
	if err := on.p.Pause(); err != nil {
		t.Fatal(err)
	}
	defer on.p.Resume() // SIGCONT to a running group changes nothing
	hubs := waitFor(t, 60*time.Second, "every hub off the hung node", func() bool { return e.hubConnections() == len(e.hubs) })
	took := waitFor(t, 60*time.Second, "every agent off the hung node", func() bool {
		n := e.connectedTo(id)
		if n == nil || n == on {
			return false
		}
		for _, ag := range e.agents {
			if other := e.connectedTo(nodeID(t, ag)); other == nil || other == on {
				return false
			}
		}
		return true
	})
	t.Logf("NATS node %s hung (SIGSTOP): every hub on another node after %v (hub pings 5s x 3), every agent %v later (agent pings 10s x 3)",
		on.name, hubs.Round(time.Millisecond), took.Round(time.Millisecond))
	toks := []string{e.agentToken(e.agents[0]), e.agentToken(e.agents[1])}
	e.cli.Must("", "--hub", "http://"+e.hubs[1].addr, "install", "disable", "-w", "acme", "web")
	for _, ag := range e.agents {
		d := waitFor(t, 5*time.Second, ag.Name+" dropped the revoked token", func() bool { return e.agentToken(ag) == "" })
		t.Logf("%s stopped handing out the revoked token %v after the revoke returned", ag.Name, d.Round(time.Millisecond))
	}
	e.cli.Must("", "install", "enable", "-w", "acme", "web")
	on.p.Resume()
	for _, n := range e.nats {
		n.waitRoutes(t, 2)
	}
	return toks
}

// Agent 2 is cut off from every NATS node while its install is revoked:
// the proxy refuses the token meanwhile, and after the agent reconnects
// it never hands the revoked token out.
func testAgentPartitioned(t *testing.T, e *env) []string {
	a := e.agents[1]
	tok := e.agentToken(a)
	if code, body := pull(e.hubs[1], "org/app", "v1", tok); code != http.StatusOK {
		t.Fatalf("agent 2's token: %d %s", code, body)
	}
	e.partitionAgent(true)
	cut := true
	defer func() {
		if cut {
			e.partitionAgent(false)
		}
	}()
	d := waitFor(t, 45*time.Second, "agent 2 notices the partition", func() bool { return a.Metric(t, "pullgate_agent_nats_connected") == "0" })
	t.Logf("agent 2 partitioned from all NATS nodes: disconnected after %v", d.Round(time.Millisecond))
	e.cli.Must("", "--hub", "http://"+e.hubs[1].addr, "install", "disable", "-w", "acme", "web")
	for _, h := range e.hubs {
		if code, body := pull(h, "org/app", "v1", tok); code != http.StatusUnauthorized {
			t.Fatalf("partitioned agent's revoked token at %s: %d %s", h.name, code, body)
		}
	}
	const okResyncs = `pullgate_agent_resyncs_total{result="ok"}`
	resyncs := a.Metric(t, okResyncs)
	e.partitionAgent(false)
	cut = false
	d = waitFor(t, 60*time.Second, "agent 2 reconnected", func() bool { return a.Metric(t, "pullgate_agent_nats_connected") == "1" })
	t.Logf("partition lifted: agent 2 reconnected after %v", d.Round(time.Millisecond))
	for i := range 5 {
		if got := e.agentToken(a); got != "" {
			t.Fatalf("after reconnecting agent 2 handed out a token for the revoked install (attempt %d, same token: %v)", i, got == tok)
		}
	}
	waitFor(t, 10*time.Second, "agent 2 resynced after the reconnect", func() bool { return a.Metric(t, okResyncs) != resyncs })
	e.cli.Must("", "install", "enable", "-w", "acme", "web")
	return []string{tok}
}

// PostgreSQL stops for 30 s: every replica fails closed with a 503 that
// names the database (proxy and API), and each recovers on its own once
// the database is back.
func testPostgresDown(t *testing.T, e *env) []string {
	tok := e.agentToken(e.agents[0])
	for _, h := range e.hubs {
		if code, body := pull(h, "org/app", "v1", tok); code != http.StatusOK {
			t.Fatalf("%s before the outage: %d %s", h.name, code, body)
		}
	}
	// A blob stream in flight, read slowly (about 6 MiB/s), verified
	// before the outage: it goes on for at most two live-state check
	// intervals of the outage, then is cut.
	type streamResult struct {
		got int64
		err error
		at  time.Time
	}
	hash := sha256.New()
	streamDone := make(chan streamResult, 1)
	blobResp, err := http.DefaultClient.Do(blobRequest(e.hubs[2], "org/big", e.bigBlob, tok, ""))
	if err != nil || blobResp.StatusCode != http.StatusOK {
		t.Fatalf("blob stream before the outage: %v %v", err, blobResp)
	}
	go func() {
		defer blobResp.Body.Close()
		var r streamResult
		buf := make([]byte, 64<<10)
		for r.err == nil && r.got < e.bigSize {
			var n int
			n, r.err = blobResp.Body.Read(buf)
			hash.Write(buf[:n])
			r.got += int64(n)
			time.Sleep(10 * time.Millisecond)
		}
		r.at = time.Now()
		streamDone <- r
	}()
	time.Sleep(500 * time.Millisecond)

	const outage = 30 * time.Second
	e.postgres("stop")
	down := time.Now()
	checks := 0
	for time.Since(down) < outage-3*time.Second {
		for _, h := range e.hubs {
			code, body := pull(h, "org/app", "v1", tok)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unavailable") {
				t.Fatalf("%s pull without its database: %d %s, want 503 naming the database", h.name, code, body)
			}
			code, body = e.api(h, http.MethodGet, "/api/v1/workspaces")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unavailable") {
				t.Fatalf("%s API without its database: %d %s, want 503 naming the database", h.name, code, body)
			}
			code, body = e.api(h, http.MethodPost, "/api/v1/workspaces/acme/installs/web/disable")
			if code != http.StatusServiceUnavailable {
				t.Fatalf("%s disable without its database: %d %s", h.name, code, body)
			}
			checks++
		}
		time.Sleep(2 * time.Second)
	}
	var stream streamResult
	select {
	case stream = <-streamDone:
	case <-time.After(outage - time.Since(down)):
		t.Fatal("a blob stream went on through the whole database outage")
	}
	if stream.err == nil || stream.err == io.EOF || stream.got >= e.bigSize {
		t.Fatalf("the stream in flight ended cleanly (%d bytes, %v): want a cut", stream.got, stream.err)
	}
	t.Logf("a blob stream in flight at %s was cut %v into the outage, after %d MiB", e.hubs[2].name,
		stream.at.Sub(down).Round(time.Millisecond), stream.got>>20)
	time.Sleep(outage - time.Since(down))
	t.Logf("PostgreSQL down for %v: %d checks per replica, every pull and API call answered 503 database unavailable",
		time.Since(down).Round(time.Second), checks/len(e.hubs))
	e.postgres("start")
	back := time.Now()
	var wg sync.WaitGroup
	rec := make([]time.Duration, len(e.hubs))
	for i, h := range e.hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(back) < 60*time.Second {
				if code, _ := pull(h, "org/app", "v1", tok); code == http.StatusOK {
					rec[i] = time.Since(back)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for i, h := range e.hubs {
		if rec[i] == 0 {
			t.Fatalf("%s did not serve within 60s of PostgreSQL's return", h.name)
		}
		if code, body := e.api(h, http.MethodGet, "/api/v1/workspaces"); code != http.StatusOK {
			t.Fatalf("%s API after the outage: %d %s", h.name, code, body)
		}
		if !h.p.Alive() {
			t.Fatalf("%s exited", h.name)
		}
		t.Logf("%s serves again %v after PostgreSQL is back (no restart)", h.name, rec[i].Round(time.Millisecond))
	}
	// Nothing lost: the cut stream resumes with Range at another replica.
	resp, err := http.DefaultClient.Do(blobRequest(e.hubs[0], "org/big", e.bigBlob, tok, fmt.Sprintf("bytes=%d-", stream.got)))
	if err != nil || resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("resume after the outage: %v %v", err, resp)
	}
	n, err := io.Copy(hash, resp.Body)
	resp.Body.Close()
	if err != nil || stream.got+n != e.bigSize || "sha256:"+hex.EncodeToString(hash.Sum(nil)) != e.bigBlob {
		t.Fatalf("resumed blob: %d+%d bytes, %v, digest mismatch or short", stream.got, n, err)
	}
	t.Logf("the cut stream resumed with Range at %s after the outage: digest matches", e.hubs[0].name)
	// The install was never disabled by the refused calls.
	if code, body := pull(e.hubs[2], "org/app", "v1", tok); code != http.StatusOK {
		t.Fatalf("after the outage: %d %s", code, body)
	}
	return []string{tok}
}
