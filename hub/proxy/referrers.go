package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxErrorBody bounds how much of an upstream error body is read to learn
// its OCI error codes.
const maxErrorBody = 64 << 10

// referrersNotFound maps an upstream 404 to a referrers request. The OCI
// distribution spec (v1.1, "Listing Referrers") gives 404 one meaning here:
// a registry with the referrers API never answers 404 (an unknown subject
// is an empty index), so a 404 says the registry has no such API and the
// client falls back to the referrers tag schema (<alg>-<hex> tags).
// Clients tell the two apart by the error code: oras-go and notation take
// NAME_UNKNOWN as "no such repository" and do not fall back, anything else
// as "no referrers API" (go-containerregistry falls back on any 404). So
// the hub keeps the upstream's distinction: NAME_UNKNOWN only when the
// upstream said so, UNSUPPORTED otherwise (distribution 2.8 and 3.x answer
// an unrouted path with a plain-text 404). No upstream text is passed on.
func referrersNotFound(resp *http.Response, rt route) *apiError {
	if upstreamSaid(resp, "NAME_UNKNOWN") {
		return errNameUnknown(fmt.Sprintf("upstream %s has no repository %s", rt.repo.Host, rt.repo.Path))
	}
	return errCode(http.StatusNotFound, "UNSUPPORTED", fmt.Sprintf("upstream %s does not serve the referrers API: use the referrers tag schema", rt.repo.Host))
}

// upstreamSaid reports whether an upstream error body carries the OCI
// error code code.
func upstreamSaid(resp *http.Response, code string) bool {
	var body errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&body); err != nil {
		return false
	}
	for _, e := range body.Errors {
		if e.Code == code {
			return true
		}
	}
	return false
}
