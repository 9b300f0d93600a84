package hubclient

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/pkg/wire"

	"github.com/pullgate/pullgate/pkg/natstls"
)

// WithCA verifies the hub's NATS certificate against this PEM file
// instead of the system roots.
func WithCA(file string) Option { return func(c *config) { c.caFile = file } }

// WithInsecurePlaintext allows a nats:// (plain-text) URL to a host other
// than loopback: the join token, node secret, service-account tokens and
// install tokens then cross the network in clear text.
func WithInsecurePlaintext(insecure bool) Option { return func(c *config) { c.insecure = insecure } }

// Validate checks the URL and the CA file as Enrol and Dial will, so that a
// bad setting fails at startup.
func Validate(natsURL string, opts ...Option) error {
	_, err := newConfig(opts).security(natsURL)
	return err
}

// security returns the nats.go options that make the connection safe:
// the URL check, and the TLS config used for tls:// and for a server that
// requires TLS on a nats:// URL (nats.go then upgrades before sending
// anything, and the certificate is verified all the same).
func (c config) security(natsURL string) ([]nats.Option, error) {
	if err := wire.CheckNATSURL(natsURL, c.insecure); err != nil {
		return nil, err
	}
	tc, err := natstls.ClientConfig(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("NATS CA: %w", err)
	}
	return []nats.Option{func(o *nats.Options) error { o.TLSConfig = tc; return nil }}, nil
}

// isTLSFailure reports whether err is a TLS handshake or verification
// failure, or a TLS/plain-text mismatch with the server.
func isTLSFailure(err error) bool {
	return errors.Is(err, nats.ErrTLS) || errors.Is(err, nats.ErrSecureConnWanted)
}

// tlsHint names what to check after a TLS failure.
func tlsHint(err error) error {
	if errors.Is(err, nats.ErrSecureConnWanted) {
		return fmt.Errorf("%w (the URL asks for tls:// but the server does not offer TLS)", err)
	}
	return fmt.Errorf("%w (TLS with the hub's NATS failed: give the CA of its certificate with --nats-ca, and reach it by a name or address the certificate holds)", err)
}
