// Package httprec records what a handler wrote: the status and the body
// bytes, for access logs, audit events and metrics.
package httprec

import "net/http"

// Recorder wraps a ResponseWriter. The first WriteHeader wins (later ones
// are not passed on); a Write before any WriteHeader writes 200. Unwrap
// lets http.ResponseController reach the connection (Flush, write
// deadlines); ReadFrom is deliberately absent, so io.Copy goes through
// Write and the bytes are counted (a caller that wants sendfile reaches
// the wrapped writer's ReadFrom itself).
type Recorder struct {
	http.ResponseWriter
	// Status is the status written; a caller may preset the one a handler
	// that writes nothing gets from net/http (200), else it is 0 until then.
	Status int
	Bytes  int64 // body bytes written through Write
	wrote  bool
}

// Wrote reports whether the header has been written.
func (r *Recorder) Wrote() bool { return r.wrote }

// WriteHeader records the first status and passes it on.
func (r *Recorder) WriteHeader(code int) {
	if !r.wrote {
		r.Status, r.wrote = code, true
		r.ResponseWriter.WriteHeader(code)
	}
}

// Write writes the header (200) if needed and counts the bytes.
func (r *Recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap is the wrapped writer, for http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
