// Package natstls is the TLS a NATS client of pullgate uses (the agent to
// the hub, the hub to an external server): TLS 1.2 or later, verified
// against a CA file or else the system roots.
package natstls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ClientConfig returns the client TLS configuration; caFile "" means the
// system roots.
func ClientConfig(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}
