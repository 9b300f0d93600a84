package proxy

import "net/http"

// inertHeaders make every pull-API answer inert in a browser. The hub
// serves the console and the API on the same origin as /v2/, and an
// upstream (a tenant's own registry) chooses the Content-Type and body of
// manifests, tag lists and referrers: text/html served here, opened by a
// signed-in operator (the install token as Basic credentials in the URL),
// would run script with the console's cookie. A sandboxed document with no
// sources runs nothing and has an opaque origin; nosniff keeps browsers
// from guessing HTML. Registry clients ignore both headers.
func inertHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
}
