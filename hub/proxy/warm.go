package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// Warm bounds: a manifest the hub parses, how deep indexes may nest
// (an index of indexes of manifests is depth 2), and how many entries one
// warm fetches. An upstream (a tenant may run one) cannot keep a warm
// going forever.
const (
	maxWarmManifest = 4 << 20
	maxWarmDepth    = 4
	maxWarmEntries  = 10000
)

// WarmedEntry is one entry a warm fetched or found cached.
type WarmedEntry struct {
	Digest string `json:"digest"`
	Kind   string `json:"kind"` // manifest or blob
	Size   int64  `json:"size"`
	// Cached is true when the entry was already in the cache.
	Cached bool `json:"cached"`
}

// WarmResult is what Warm did for one image.
type WarmResult struct {
	Image   string        `json:"image"`
	Digest  string        `json:"digest"`
	Entries []WarmedEntry `json:"entries"`
}

// ErrNoCache means the hub runs without a cache.
var ErrNoCache = errors.New("the hub runs without a cache (--cache off)")

// WarmError is a warm refused or failed for a reason the operator can act
// on: Msg names what is wrong (never an upstream's own text), Status is
// the HTTP status that says it.
type WarmError struct {
	Status int
	Msg    string
}

func (e *WarmError) Error() string { return e.Msg }

// Warm pulls image (host/path:tag or @digest) into the cache with the
// workspace's credential for it: the manifest (every manifest of an
// index) and every blob they name. The workspace's credential is
// confirmed for each entry as a pull would; installs still confirm with
// their own before they are served.
func (p *Proxy) Warm(ctx context.Context, workspace, image string) (WarmResult, error) {
	res := WarmResult{Image: image}
	if p.cache == nil {
		return res, ErrNoCache
	}
	repo, ref, err := imageref.ParseImage(image)
	if err != nil {
		return res, &WarmError{http.StatusBadRequest, err.Error()}
	}
	ws, err := p.store.GetWorkspace(ctx, workspace)
	if err != nil {
		return res, err
	}
	cred, aerr := p.pickCredential(ctx, ws.ID, repo)
	if aerr != nil {
		return res, &WarmError{aerr.status, aerr.message}
	}
	inst := store.Install{WorkspaceID: ws.ID}
	target := p.targetFor(cred, repo)
	rt := route{kind: kindManifests, repo: repo, ref: ref}
	origin, ok := cacheOrigin(cred)
	if !ok {
		return res, &WarmError{http.StatusBadRequest, "the upstream of the credential for " + repo.Host + " cannot be determined; nothing is cached for it"}
	}
	ck := confirmKeys(cred, origin, repo.String())

	digest := ref
	if !isDigest(ref) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, "/", nil)
		if err != nil {
			return res, err
		}
		h, aerr, _ := p.headUpstream(req, rt, inst, cred, target, ref, manifestAccept)
		if aerr != nil {
			return res, &WarmError{aerr.status, aerr.message}
		}
		c := confirmationOf(h, origin, p.now())
		if !isDigest(c.Digest) {
			return res, &WarmError{http.StatusBadGateway, "upstream " + repo.Host + " sent no digest for " + image}
		}
		digest = c.Digest
		p.confirms.Put(ck("tag:"+ref), c)
	}
	res.Digest = digest

	// One manifest at a time: an index's children, then their blobs.
	type item struct {
		digest, kind string
		depth        int
	}
	queue := []item{{digest, kindManifests, 0}}
	seen := map[string]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if seen[it.digest] {
			continue
		}
		seen[it.digest] = true
		if len(seen) > maxWarmEntries {
			return res, &WarmError{http.StatusBadGateway, fmt.Sprintf("%s names more than %d manifests and blobs", image, maxWarmEntries)}
		}
		ert := route{kind: it.kind, repo: repo, ref: it.digest}
		e, body, err := p.warmOne(ctx, ert, inst, cred, origin, ck)
		if err != nil {
			return res, err
		}
		res.Entries = append(res.Entries, e)
		if it.kind != kindManifests {
			continue
		}
		var m struct {
			Manifests []struct {
				Digest string `json:"digest"`
			} `json:"manifests"`
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
			FSLayers []struct {
				BlobSum string `json:"blobSum"`
			} `json:"fsLayers"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return res, &WarmError{http.StatusBadGateway, "manifest " + it.digest + " of " + image + " is not JSON"}
		}
		if len(m.Manifests) > 0 && it.depth >= maxWarmDepth {
			return res, &WarmError{http.StatusBadGateway, fmt.Sprintf("manifest %s of %s nests indexes deeper than %d", it.digest, image, maxWarmDepth)}
		}
		for _, c := range m.Manifests {
			if !isDigest(c.Digest) {
				return res, &WarmError{http.StatusBadGateway, fmt.Sprintf("manifest %s of %s names a bad digest", it.digest, image)}
			}
			queue = append(queue, item{c.Digest, kindManifests, it.depth + 1})
		}
		var blobs []string
		if m.Config.Digest != "" {
			blobs = append(blobs, m.Config.Digest)
		}
		for _, l := range m.Layers {
			blobs = append(blobs, l.Digest)
		}
		for _, l := range m.FSLayers {
			blobs = append(blobs, l.BlobSum)
		}
		for _, b := range blobs {
			if !isDigest(b) {
				return res, &WarmError{http.StatusBadGateway, fmt.Sprintf("manifest %s of %s names a bad digest", it.digest, image)}
			}
			queue = append(queue, item{b, kindBlobs, it.depth + 1})
		}
	}
	return res, nil
}

// warmOne fills one entry and waits until it is committed. For manifests
// it returns the body.
func (p *Proxy) warmOne(ctx context.Context, rt route, inst store.Install, cred store.Credential, origin string, ck func(string) cache.ConfirmKey) (WarmedEntry, []byte, error) {
	e := WarmedEntry{Digest: rt.ref, Kind: rt.auditKind()}
	cc := p.cache.Cache
	key := cache.Key{Origin: origin, Digest: rt.ref}
	dk := ck(rt.ref)
	if cc.Has(key) {
		// Cached by someone: confirm with this workspace's credential too,
		// so the answer is this workspace's own.
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, "/", nil)
		if err != nil {
			return e, nil, err
		}
		h, aerr, _ := p.headUpstream(req, rt, inst, cred, p.targetFor(cred, rt.repo), rt.ref, manifestAccept)
		if aerr != nil {
			return e, nil, &WarmError{aerr.status, aerr.message}
		}
		c := confirmationOf(h, origin, p.now())
		c.Digest = rt.ref
		p.confirms.Put(dk, c)
		e.Cached = true
	}
	rd, started, err := cc.Fill(ctx, key, p.fillFetch(rt, rt.ref, inst, cred, p.targetFor(cred, rt.repo), origin, nil,
		func(c cache.Confirmation) { p.confirms.Put(dk, c) }))
	var fe fillError
	switch {
	case errors.As(err, &fe):
		return e, nil, &WarmError{fe.aerr.status, fe.aerr.message}
	case err != nil:
		return e, nil, fmt.Errorf("warm %s: %w", rt.ref, err)
	}
	defer rd.Close()
	if !started && !e.Cached {
		// Joined a fill someone else started after Has: confirm.
		rd.Close()
		return p.warmOne(ctx, rt, inst, cred, origin, ck)
	}
	if rt.kind != kindManifests {
		if _, err := cc.Wait(ctx, key); err != nil {
			return e, nil, err
		}
		rd.Close()
		r2, ok, err := cc.Lookup(ctx, key)
		if err != nil || !ok {
			return e, nil, &WarmError{http.StatusBadGateway, "blob " + rt.ref + " was not cached (upstream content did not match its digest, or the cache is too small)"}
		}
		e.Size = r2.Info().Size
		r2.Close()
		return e, nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(rd, maxWarmManifest+1))
	if err != nil {
		return e, nil, &WarmError{http.StatusBadGateway, "manifest " + rt.ref + " was not cached: " + err.Error()}
	}
	if len(body) > maxWarmManifest {
		return e, nil, &WarmError{http.StatusBadGateway, "manifest " + rt.ref + " is larger than 4 MiB"}
	}
	e.Size = int64(len(body))
	return e, body, nil
}
