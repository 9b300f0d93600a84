package httprec

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecorder(t *testing.T) {
	for _, c := range []struct {
		name       string
		preset     int
		handler    func(w http.ResponseWriter)
		wantStatus int // recorded
		wantSent   int // what the client got
		wantBytes  int64
		wantWrote  bool
	}{
		{"nothing written", 0, func(http.ResponseWriter) {}, 0, 200, 0, false},
		{"nothing written, preset", 200, func(http.ResponseWriter) {}, 200, 200, 0, false},
		{"write only", 0, func(w http.ResponseWriter) { io.WriteString(w, "hello") }, 200, 200, 5, true},
		{"status then body", 0, func(w http.ResponseWriter) { w.WriteHeader(404); io.WriteString(w, "no") }, 404, 404, 2, true},
		{"first status wins", 200, func(w http.ResponseWriter) { w.WriteHeader(502); w.WriteHeader(200) }, 502, 502, 0, true},
		{"copy counts", 0, func(w http.ResponseWriter) { io.Copy(w, strings.NewReader(strings.Repeat("x", 100000))) }, 200, 200, 100000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			hr := httptest.NewRecorder()
			rec := &Recorder{ResponseWriter: hr, Status: c.preset}
			c.handler(rec)
			if rec.Status != c.wantStatus || rec.Bytes != c.wantBytes || hr.Code != c.wantSent {
				t.Errorf("recorded %d %d bytes, sent %d; want %d %d, %d", rec.Status, rec.Bytes, hr.Code, c.wantStatus, c.wantBytes, c.wantSent)
			}
			if rec.Wrote() != c.wantWrote {
				t.Errorf("Wrote() = %v", rec.Wrote())
			}
		})
	}
}

// The recorder hides no capability http.ResponseController needs.
func TestRecorderFlushesThroughController(t *testing.T) {
	hr := httptest.NewRecorder()
	rec := &Recorder{ResponseWriter: hr}
	io.WriteString(rec, "x")
	if err := http.NewResponseController(rec).Flush(); err != nil || !hr.Flushed {
		t.Errorf("flush through the recorder: %v, flushed %v", err, hr.Flushed)
	}
	if _, ok := any(rec).(io.ReaderFrom); ok {
		t.Error("Recorder has ReadFrom: io.Copy would bypass the byte count")
	}
}
