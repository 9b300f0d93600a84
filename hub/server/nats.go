package server

import (
	"fmt"
	"net"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// startNATS runs the embedded NATS server with JetStream on disk. It is the
// control plane node agents connect to.
func startNATS(listen, storeDir string) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: bad port", listen)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "pullgate-hub",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true, // the hub handles signals
		NoLog:      true,
		MaxPayload: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: not ready on %s after 15s", listen)
	}
	return ns, nil
}
