package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pullgate/pullgate/hub/upstream"
)

// maxRedirects bounds the upstream redirects followed for one request.
const maxRedirects = 5

// forwardHeaders are the request headers passed to the upstream.
var forwardHeaders = []string{"Accept", "Range", "If-Range", "If-None-Match", "If-Modified-Since"}

// fetch sends the request upstream and follows redirects itself: to the
// upstream host with the upstream transport, anywhere else (a blob CDN)
// with a client that carries no credentials.
func (p *Proxy) fetch(r *http.Request, rt route, conn *upstream.Conn) (*http.Response, error) {
	u := conn.Base + rt.upstreamPath()
	if q := upstreamQuery(r.URL.Query(), rt.kind); q != "" {
		u += "?" + q
	}
	client := &http.Client{Transport: conn.Transport, CheckRedirect: noRedirect}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, u, nil)
		if err != nil {
			return nil, err
		}
		for _, h := range forwardHeaders {
			// All values: clients send one Accept header per media type, and
			// an upstream that sees only the first may down-convert.
			for _, v := range r.Header.Values(h) {
				req.Header.Add(h, v)
			}
		}
		req.Header.Set("User-Agent", "pullgate")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if hop == maxRedirects || loc == "" {
			return nil, fmt.Errorf("upstream redirected more than %d times or without a location", maxRedirects)
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("upstream redirect: bad location")
		}
		if next.Scheme != "https" && !(next.Scheme == "http" && strings.HasPrefix(conn.Base, "http:")) {
			return nil, fmt.Errorf("upstream redirect to a %q URL refused", next.Scheme)
		}
		u = next.String()
		if !strings.EqualFold(next.Host, conn.Addr) {
			// Another host (a blob CDN): no credentials, and only public
			// addresses unless the operator allowed this upstream private
			// ones.
			client = p.cdnPublic
			if conn.Private {
				client = p.cdnAny
			}
		}
	}
}

func upstreamQuery(q url.Values, kind string) string {
	out := url.Values{}
	keys := map[string][]string{kindTags: {"n", "last"}, kindReferrers: {"artifactType"}}[kind]
	for _, k := range keys {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out.Encode()
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// cdnClient follows blob redirects without credentials. For upstreams not
// allowed a private network it refuses to dial anything but globally
// reachable addresses (netguard), checked on the address actually dialled,
// so an upstream cannot redirect the hub into its own network.
func cdnClient(publicOnly bool) *http.Client {
	return &http.Client{Transport: upstream.GuardedTransport(!publicOnly, nil), CheckRedirect: noRedirect}
}
