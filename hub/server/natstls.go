package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/pullgate/pullgate/pkg/wire"

	"github.com/pullgate/pullgate/pkg/natstls"
)

// natsServerTLS is the embedded NATS server's TLS: its own key pair, or
// the HTTPS pair when none is given. Without either it refuses to listen
// anywhere but loopback unless the operator opted into plain text: join
// tokens, node secrets and install tokens cross this port.
func natsServerTLS(cfg Config, httpsTLS *tls.Config) (*tls.Config, error) {
	if cfg.NATSTLSCert != "" || cfg.NATSTLSKey != "" {
		if cfg.NATSTLSCert == "" || cfg.NATSTLSKey == "" {
			return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
		}
		cert, err := tls.LoadX509KeyPair(cfg.NATSTLSCert, cfg.NATSTLSKey)
		if err != nil {
			return nil, fmt.Errorf("load NATS TLS key pair: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	if httpsTLS != nil {
		return httpsTLS.Clone(), nil
	}
	if cfg.NATSURL != "" || cfg.NATSListen == "" || cfg.InsecureNATS {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", cfg.NATSListen, err)
	}
	if !wire.IsLoopbackHost(host) {
		return nil, fmt.Errorf("--nats-listen %s would serve agents plain-text NATS on a non-loopback address: give --nats-tls-cert and --nats-tls-key (or --tls-cert and --tls-key), or --insecure-nats to accept clear text",
			cfg.NATSListen)
	}
	return nil, nil
}

// natsClientTLS is the TLS of the hub's connection to an external NATS
// server: verified against --nats-ca (or the system roots). A plain-text
// URL to another host carries the hub's NATS password, so it needs
// --insecure-nats like the agents' URLs.
func natsClientTLS(cfg Config) (*tls.Config, error) {
	if cfg.NATSURL == "" {
		return nil, nil
	}
	if err := wire.CheckNATSURL(cfg.NATSURL, cfg.InsecureNATS); err != nil {
		return nil, fmt.Errorf("--nats-url: %w", err)
	}
	tc, err := natstls.ClientConfig(cfg.NATSCA)
	if err != nil {
		return nil, fmt.Errorf("--nats-ca: %w", err)
	}
	return tc, nil
}
