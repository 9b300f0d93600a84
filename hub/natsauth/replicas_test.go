package natsauth

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// countingNodes counts the node lookups an authorizer makes.
type countingNodes struct {
	Nodes
	n *atomic.Int64
}

func (c countingNodes) NodeByID(ctx context.Context, id string) (store.Node, []byte, error) {
	c.n.Add(1)
	return c.Nodes.NodeByID(ctx, id)
}

// Several hub replicas subscribe the callout on one server: each
// connection is decided by one of them (a queue group), not by every one.
func TestCalloutAnsweredByOneReplica(t *testing.T) {
	e := newEnv(t) // the first replica
	var lookups atomic.Int64
	for range 2 { // two more replicas, counted
		hub, err := nats.Connect(e.url, nats.UserInfo(HubUser, e.creds.Password))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hub.Close)
		if _, err := New(countingNodes{e.store, &lookups}, e.creds.Issuer).Subscribe(hub); err != nil {
			t.Fatal(err)
		}
		if err := hub.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.cluster("edge")
	n, secret := e.node(c, "worker-1")
	const connects = 6
	for i := range connects {
		cl, err := e.connect(n.ID, secret, wire.InboxPrefix(n.ID))
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		cl.nc.Close()
	}
	// Without a queue group both counted replicas would look the node up
	// for every connection (2*connects).
	if got := lookups.Load(); got > connects {
		t.Fatalf("the counted replicas looked the node up %d times for %d connections: every replica answers every request", got, connects)
	}
}

// The block nats-config prints makes the server drop a hung hub within
// seconds (nats-server's default is 2m x 2), and parses as the server
// reads it.
func TestConfigBlockDropsHungClients(t *testing.T) {
	dir := t.TempDir()
	creds, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("listen: \"127.0.0.1:-1\"\n"+creds.ConfigBlock(TLSFiles{})), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the block: %v", err)
	}
	if opts.PingInterval != StalePingInterval || opts.MaxPingsOut != StalePingMax || opts.PingInterval*time.Duration(opts.MaxPingsOut) > 30*time.Second {
		t.Fatalf("ping_interval %v ping_max %d", opts.PingInterval, opts.MaxPingsOut)
	}
}
