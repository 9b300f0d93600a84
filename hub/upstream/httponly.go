package upstream

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/pullgate/pullgate/hub/store"
)

// ExplicitHTTP reports whether the operator named plain HTTP as the
// credential's endpoint (--endpoint http://...): the hub then talks HTTP
// only, never https first.
func ExplicitHTTP(c store.Credential) bool {
	return strings.HasPrefix(strings.ToLower(c.Endpoint), "http://")
}

// errSkipHTTPS answers the https attempt go-containerregistry's Ping makes
// before http for an insecure registry, without touching the network.
var errSkipHTTPS = errors.New("https not tried: the endpoint is http://")

// httpOnly refuses https requests at once and marks the failures of the
// plain-HTTP ones, so that a failed ping reports the HTTP attempt alone.
type httpOnly struct{ inner http.RoundTripper }

func (h httpOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errSkipHTTPS
	}
	resp, err := h.inner.RoundTrip(r)
	if err != nil {
		return nil, &httpAttempt{method: r.Method, url: r.URL.String(), err: err}
	}
	return resp, nil
}

// httpAttempt is a failed plain-HTTP request through httpOnly.
type httpAttempt struct {
	method, url string
	err         error
}

func (e *httpAttempt) Error() string { return e.err.Error() }
func (e *httpAttempt) Unwrap() error { return e.err }

// asURLError is the HTTP attempt's failure as http.Client reports one.
func (e *httpAttempt) asURLError() error {
	op := e.method
	if len(op) > 1 {
		op = op[:1] + strings.ToLower(op[1:])
	}
	return &url.Error{Op: op, URL: e.url, Err: e.err}
}
