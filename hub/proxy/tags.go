package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// maxTagList bounds an upstream tag list the hub rewrites in memory; a
// longer one is refused (the client can page with ?n=).
const maxTagList = 8 << 20

// Large tag lists (over defaultSmallTagList) held in memory at once are
// bounded by tagListSlots (Proxy.tagSlots; each costs a few times
// maxTagList while rewritten): a tenant asking for a huge list many times
// over waits for a slot instead of growing the hub's memory. Small lists,
// the usual ones, take no slot, so that slow huge lists never hold them up.
const (
	tagListSlots        = 4
	defaultSmallTagList = 64 << 10
)

// serveTagList answers tags/list with the upstream's list under the name
// the client asked for (distribution spec: "name" is the repository of the
// request): registry.test/team/app in the path-prefix form, team/app in the
// mirror form, never the upstream's own path. Other fields pass unchanged.
func (p *Proxy) serveTagList(w *countingWriter, r *http.Request, rt route, resp *http.Response) (int64, *apiError) {
	h := w.Header()
	for _, k := range []string{"Content-Type", "Etag", "Last-Modified"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if link := resp.Header.Get("Link"); link != "" {
		if l, ok := rewriteLink(link, rt); ok {
			h.Set("Link", l)
		}
	}
	if r.Method == http.MethodHead {
		// The length of the rewritten body is not known without it.
		w.WriteHeader(http.StatusOK)
		return 0, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(p.smallTagList)+1))
	if err == nil && len(raw) > p.smallTagList {
		select {
		case p.tagSlots <- struct{}{}:
			defer func() { <-p.tagSlots }()
		case <-r.Context().Done():
			return 0, &apiError{status: 499, code: "UNAVAILABLE", message: "client went away"}
		}
		var rest []byte
		rest, err = io.ReadAll(io.LimitReader(resp.Body, int64(maxTagList+1-len(raw))))
		raw = append(raw, rest...)
	}
	if err != nil {
		return 0, p.streamFailed(r, rt, "read tag list", err)
	}
	if len(raw) > maxTagList {
		return 0, &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_body",
			message: "upstream " + rt.repo.Host + " tag list is larger than " + strconv.Itoa(maxTagList>>20) + " MiB: page it with ?n="}
	}
	var list map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return 0, &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", reason: "upstream_body",
			message: "upstream " + rt.repo.Host + " answered a tag list that is not a JSON object"}
	}
	list["name"], _ = json.Marshal(rt.name)
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(list); err != nil {
		return 0, errUpstream("encode tag list: " + err.Error())
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	n, err := w.Write(buf.Bytes())
	if err != nil {
		return int64(n), p.streamFailed(r, rt, "write to client", err)
	}
	return int64(n), nil
}
