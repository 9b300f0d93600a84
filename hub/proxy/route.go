package proxy

import (
	"net/http"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// Kinds of proxied requests, as they appear in the API path.
const (
	kindBase      = "base"
	kindManifests = "manifests"
	kindBlobs     = "blobs"
	kindTags      = "tags"
	kindReferrers = "referrers"
)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// route is a parsed pull-API request.
type route struct {
	kind   string
	repo   imageref.Repo
	ref    string // tag or digest (manifests), digest (blobs, referrers)
	mirror bool   // mirror form: /v2/<repo>/...?ns=<host>
	name   string // the repository name as the client wrote it in the path
}

// auditKind is the audit trail's name for the request kind.
func (rt route) auditKind() string {
	switch rt.kind {
	case kindManifests:
		return "manifest"
	case kindBlobs:
		return "blob"
	}
	return rt.kind
}

// upstreamPath is the request path on the upstream registry.
func (rt route) upstreamPath() string {
	if rt.kind == kindTags {
		return "/v2/" + rt.repo.Path + "/tags/list"
	}
	return "/v2/" + rt.repo.Path + "/" + rt.kind + "/" + rt.ref
}

// parseRoute understands both forms of a pull request:
//
//	path prefix: /v2/<upstream-host>/<repo>/(manifests|blobs|referrers)/<ref>, /v2/<host>/<repo>/tags/list
//	mirror:      /v2/<repo>/...?ns=<upstream-host>   (what containerd sends to a hosts.toml mirror)
//
// Nothing here touches the network: an unknown or malformed host is only a
// name until a workspace credential for it is found.
func parseRoute(r *http.Request) (route, *apiError) {
	if strings.Contains(r.URL.EscapedPath(), "%") {
		return route{}, errNameInvalid("path must not contain escaped characters")
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		return route{}, errNotFound("not an OCI distribution path")
	}
	if rest == "" {
		return route{kind: kindBase}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	var rt route
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt.kind = kindTags
	case n >= 3 && (segs[n-2] == kindManifests || segs[n-2] == kindBlobs || segs[n-2] == kindReferrers):
		rt.kind, rt.ref = segs[n-2], segs[n-1]
	default:
		return route{}, errNotFound("not an OCI distribution pull path: want /v2/<host>/<repository>/manifests|blobs|referrers/<reference> or /tags/list")
	}
	nameSegs := segs[:n-2]
	rt.name = strings.Join(nameSegs, "/")
	var host, path string
	if ns := r.URL.Query().Get("ns"); ns != "" {
		rt.mirror = true
		host, path = ns, rt.name
	} else if imageref.LooksLikeHost(nameSegs[0]) && len(nameSegs) > 1 {
		host, path = nameSegs[0], strings.Join(nameSegs[1:], "/")
	} else {
		return route{}, errNameUnknown("repository " + quote(rt.name) + " names no upstream host: use /v2/<upstream-host>/<repository>/... or the ns query parameter")
	}
	repo, err := imageref.ParseRepo(host, path)
	if err != nil {
		return route{}, errNameInvalid(err.Error())
	}
	rt.repo = repo
	switch rt.kind {
	case kindManifests:
		if !tagRE.MatchString(rt.ref) && !isDigest(rt.ref) {
			return route{}, errCode(http.StatusBadRequest, "MANIFEST_INVALID", "reference "+quote(rt.ref)+" is neither a tag nor a digest")
		}
	case kindBlobs, kindReferrers:
		if !isDigest(rt.ref) {
			return route{}, errCode(http.StatusBadRequest, "DIGEST_INVALID", "reference "+quote(rt.ref)+" is not a digest")
		}
	}
	return rt, nil
}

func isDigest(s string) bool {
	_, err := v1.NewHash(s)
	return err == nil
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return `"` + s + `"`
}
