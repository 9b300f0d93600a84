package hubclient_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/internal/testtls"
)

// tlsServer runs a NATS server that takes TLS only, with a self-signed
// certificate for 127.0.0.1, and returns its port and the certificate file.
func tlsServer(t *testing.T) (int, string) {
	t.Helper()
	certFile, keyFile, _ := testtls.SelfSigned(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, TLS: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	return ns.Addr().(*net.TCPAddr).Port, certFile
}

// A node connection that cannot verify the hub's certificate says so in
// its log (not a silent retry loop), and connects once given the CA.
func TestDialTLS(t *testing.T) {
	port, ca := tlsServer(t)
	id := identity.Identity{NodeID: "node_1", NodeSecret: "pgn1.secret", ClusterID: "cl_1"}
	for _, scheme := range []string{"nats", "tls"} {
		url := fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
		logs := &agenttest.Logs{}
		c, err := hubclient.Dial(url, id, hubclient.Events{}, hubclient.WithReconnectWait(10*time.Millisecond, 50*time.Millisecond), hubclient.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		agenttest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "--nats-ca") }, url+": TLS failure logged")
		if c.Connected() {
			t.Fatalf("%s: connected without the CA", url)
		}
		c.Close()
		agenttest.NoSecrets(t, logs.String(), id.NodeSecret)

		c, err = hubclient.Dial(url, id, hubclient.Events{}, hubclient.WithCA(ca), hubclient.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		agenttest.Eventually(t, 5*time.Second, c.Connected, url+": connected with the CA")
		c.Close()
	}
}
