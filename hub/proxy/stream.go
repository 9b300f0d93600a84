package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Stream limits. A revoke must reach a pull that is already streaming a
// multi-GB layer, and a client that stops reading must not hold an
// upstream connection and a buffer for ever.
const (
	// DefaultRecheckInterval and DefaultRecheckBytes: during a copy the
	// token is checked against live state again after this much time or
	// this many bytes, whichever comes first.
	DefaultRecheckInterval = 5 * time.Second
	DefaultRecheckBytes    = 8 << 20
	// DefaultWriteTimeout bounds each write of a buffer (at most
	// copyBufSize) to a client: one that reads nothing for this long is
	// dropped.
	DefaultWriteTimeout = time.Minute
)

// WithStreamChecks sets how often a stream re-checks live state (every
// interval or every n bytes, whichever first) and the per-write timeout.
// Zero values keep the defaults.
func WithStreamChecks(interval time.Duration, n int64, writeTimeout time.Duration) Option {
	return func(p *Proxy) {
		if interval > 0 {
			p.recheckEvery = interval
		}
		if n > 0 {
			p.recheckBytes = n
		}
		if writeTimeout > 0 {
			p.writeTimeout = writeTimeout
		}
	}
}

// copyResponse sends the upstream's answer to the client. It returns the
// body bytes sent and, when the stream was cut, why: recheck refused the
// token (an error with a refusal), or the client or upstream failed.
func (p *Proxy) copyResponse(w *countingWriter, r *http.Request, rt route, resp *http.Response, recheck func(context.Context) *apiError) (int64, *apiError) {
	h := w.Header()
	for _, k := range responseHeaders {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if rt.kind == kindBlobs && h.Get("Docker-Content-Digest") == "" {
		h.Set("Docker-Content-Digest", rt.ref)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent {
		entryHeaders(h, rt)
	}
	if link := resp.Header.Get("Link"); link != "" {
		if l, ok := rewriteLink(link, rt); ok {
			h.Set("Link", l)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return 0, nil
	}
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	var sent, sinceCheck int64
	lastCheck := p.now()
	var deadlineSet time.Time
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			// A write deadline: a reader that stops reading is dropped after
			// writeTimeout (at most an eighth more), however long the blob.
			// Moved forward at most every eighth of it, not on every read
			// (a TLS upstream hands over 16 KiB at a time).
			if t := time.Now(); t.Sub(deadlineSet) >= p.writeTimeout/8 {
				if err := rc.SetWriteDeadline(t.Add(p.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return sent, p.streamFailed(r, rt, "set write deadline", err)
				}
				deadlineSet = t
			}
			m, werr := w.Write(buf[:n])
			sent += int64(m)
			sinceCheck += int64(m)
			if werr != nil {
				return sent, p.streamFailed(r, rt, "write to client", werr)
			}
		}
		if rerr == io.EOF {
			return sent, nil
		}
		if rerr != nil {
			return sent, p.streamFailed(r, rt, "read from upstream", rerr)
		}
		if now := p.now(); sinceCheck >= p.recheckBytes || now.Sub(lastCheck) >= p.recheckEvery {
			if aerr := recheck(r.Context()); aerr != nil && aerr.refusal != "" {
				p.log.Info("stream cut: install token no longer valid", "upstream", rt.repo.Host, "repository", rt.repo.Path,
					"ref", rt.ref, "reason", aerr.refusal, "bytes", sent)
				p.refused(aerr)
				return sent, aerr
			}
			// A short store outage is not a revoke: the stream goes on and
			// the next check tries again (recheckFunc cuts it once the
			// outage outlasts two check intervals).
			sinceCheck, lastCheck = 0, now
		}
	}
}

func (p *Proxy) streamFailed(r *http.Request, rt route, what string, err error) *apiError {
	level := slog.LevelWarn
	if r.Context().Err() != nil {
		// The client went away or stopped reading (a failed write cancels
		// the request): ordinary, not the hub's problem.
		level = slog.LevelDebug
	}
	p.log.Log(r.Context(), level, "stream interrupted", "upstream", rt.repo.Host, "repository", rt.repo.Path, "ref", rt.ref, "during", what, "err", err)
	return &apiError{status: http.StatusBadGateway, code: "UNAVAILABLE", message: "stream interrupted"}
}
