package revsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// BenchmarkColdTokenOneNATSNodeDown: cold-token latency of a real agent
// (a request over its unix socket, as the helper sends it, for a
// repository it holds no token for: a NATS request to the token service
// of one of three replicas) with all three NATS nodes up, then after the
// node the agent is connected to is shut down (the agent reconnects to
// another; the replicas connected to it too). Also reports how long the
// agent took to reconnect.
//
//	go test -run '^$' -bench ColdTokenOneNATSNodeDown -benchtime 1x ./e2e/revsim/
func BenchmarkColdTokenOneNATSNodeDown(b *testing.B) {
	const asks = 200
	e := newEnv(b, replicas)
	ctx := context.Background()
	ws, err := e.admin.CreateWorkspace(ctx, "cold")
	if err != nil {
		b.Fatal(err)
	}
	if err := e.credentialFor(ctx, ws); err != nil {
		b.Fatal(err)
	}
	c, err := e.admin.CreateCluster(ctx, store.Cluster{Name: "cold", WorkspaceID: ws.ID}, []byte("unused"))
	if err != nil {
		b.Fatal(err)
	}
	join, hash := natsauth.NewJoinToken(c.ID)
	if err := e.admin.RotateJoinToken(ctx, "cold", hash); err != nil {
		b.Fatal(err)
	}
	if _, err := e.admin.CreateInstall(ctx, "cold", store.Install{Name: "cold", Cluster: "cold",
		Repos: []string{upstreamHost + "/cold/*"}, Enabled: true}); err != nil {
		b.Fatal(err)
	}
	ag := agenttest.Start(b, agenttest.Config{NATSURL: natsURLs(e.nats, 0), Join: jointoken.Static(join)})
	ag.WaitReady(b)
	id, _ := ag.Agent.Identity()

	n := 0
	measure := func(what string) {
		var ds []time.Duration
		for i := range asks + 20 {
			n++
			start := time.Now()
			if _, err := ag.Ask(wire.CredentialsRequest{Image: fmt.Sprintf("%s/%s/cold/r%d:1", hubHost, upstreamHost, n)}); err != nil {
				b.Fatalf("%s: ask %d: %v", what, n, err)
			}
			if i >= 20 { // the first 20 warm connections and statements up
				ds = append(ds, time.Since(start))
			}
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2])/1e6, what+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100])/1e6, what+"-p99-ms")
	}
	measure("all-up")

	on := nodeServer(e.nats, id.NodeID)
	if on == nil {
		b.Fatal("the agent is on no NATS node")
	}
	t0 := time.Now()
	on.Shutdown()
	var rest []*natsserver.Server
	for _, ns := range e.nats {
		if ns != on {
			rest = append(rest, ns)
		}
	}
	for nodeServer(rest, id.NodeID) == nil {
		if time.Since(t0) > 30*time.Second {
			b.Fatalf("the agent did not reconnect to another NATS node within 30s:\n%s", ag.Logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.ReportMetric(float64(time.Since(t0))/1e6, "agent-reconnect-ms")
	measure("one-down")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d cold tokens per phase; node %s shut down; store: %s", asks, on.Name(), storeKind())
}

// nodeServer returns the server holding the node's connection, or nil.
func nodeServer(servers []*natsserver.Server, node string) *natsserver.Server {
	for _, ns := range servers {
		cz, err := ns.Connz(&natsserver.ConnzOptions{Username: true, Limit: 1 << 16})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.AuthorizedUser == node {
				return ns
			}
		}
	}
	return nil
}

func storeKind() string {
	if strings.TrimSpace(envPostgres()) != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}
