package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/pullgate/pullgate/pkg/netguard"
)

// HandshakeError is a failed ping or token exchange. Its text never holds
// what the upstream answered (a token server may echo the Basic credential
// it was sent): only the status, or the hub's own description of a
// connection failure. Err keeps the cause for errors.Is/As; do not print
// it.
type HandshakeError struct {
	Step   string // "ping", "token exchange with"
	Host   string // the host contacted
	Status int    // the upstream's HTTP status; 0 when none came
	Err    error
	msg    string
}

func (e *HandshakeError) Error() string { return e.Step + " " + e.Host + ": " + e.msg }

func (e *HandshakeError) Unwrap() error { return e.Err }

func handshakeError(ctx context.Context, step, host string, err error, auth authn.Authenticator) error {
	e := &HandshakeError{Step: step, Host: host, Err: err, msg: Describe(err)}
	var terr *transport.Error
	if errors.As(err, &terr) {
		e.Status = terr.StatusCode
	}
	if ctx.Err() != nil && e.Status == 0 {
		e.msg = "no answer in time: " + e.msg
	}
	if auth != nil {
		if cfg, aerr := authn.Authorization(ctx, auth); aerr == nil {
			e.msg = Redact(e.msg, cfg)
		}
	}
	return e
}

// Describe says what went wrong talking to an upstream without repeating
// anything the upstream sent: statuses by number, connection failures by
// the hub's own error text, URLs without their query (CDN signatures).
func Describe(err error) string {
	var he *HandshakeError
	var terr *transport.Error
	var nerr *netguard.Error
	var uerr *url.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		return he.Error()
	case errors.As(err, &terr):
		return fmt.Sprintf("upstream answered %d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	case errors.As(err, &nerr):
		return nerr.Error() + "; an operator can allow it with --allow-private-network"
	case errors.Is(err, netguard.ErrSpecialAddress):
		return netguard.ErrSpecialAddress.Error()
	case errors.Is(err, ErrPlainHTTP):
		return ErrPlainHTTP.Error()
	case errors.Is(err, ErrHostNotAllowed):
		return ErrHostNotAllowed.Error()
	case errors.As(err, &uerr):
		where := uerr.URL
		if u, perr := url.Parse(uerr.URL); perr == nil {
			where = u.Scheme + "://" + u.Host + u.Path
		}
		return uerr.Op + " " + where + ": " + Describe(uerr.Err)
	}
	return firstLine(err.Error())
}

// firstLine keeps what other errors say before anything an upstream could
// have put in them: go-containerregistry appends a token response's body
// after a newline ("no token in bearer response:\n<body>") and quotes
// redirect URLs with their query. The first line, up to a '?', clipped.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n?"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
