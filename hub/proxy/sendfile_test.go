package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"
)

// readerFromWriter stands for net/http's connection writer: it has
// ReadFrom (sendfile) and counts what reaches it that way.
type readerFromWriter struct {
	*httptest.ResponseRecorder
	viaReadFrom int64
}

func (w *readerFromWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseRecorder, r)
	w.viaReadFrom += n
	return n, err
}

// A cache hit goes from http.ServeContent through the status recorder to
// the connection's ReadFrom (sendfile), in slices, and is still counted.
func TestCacheHitReachesReadFrom(t *testing.T) {
	content := strings.Repeat("blob", 5000)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &Proxy{recheckBytes: 4096, writeTimeout: time.Second}
	p.bufs.New = func() any { b := make([]byte, 32<<10); return &b } // the path without sendfile
	conn := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	cw := &countingWriter{Recorder: httprec.Recorder{ResponseWriter: conn, Status: http.StatusOK}}
	rechecks := 0
	sw := &sendWriter{countingWriter: cw, p: p, r: httptest.NewRequest("GET", "/v2/x/blobs/sha256:0", nil),
		recheck: func(context.Context) *apiError { rechecks++; return nil }}
	http.ServeContent(sw, sw.r, "", time.Time{}, f)
	if sw.err != nil {
		t.Fatal(sw.err)
	}
	if conn.viaReadFrom != int64(len(content)) || conn.Body.String() != content {
		t.Errorf("%d of %d bytes through ReadFrom", conn.viaReadFrom, len(content))
	}
	if cw.Status != http.StatusOK || cw.Bytes != int64(len(content)) {
		t.Errorf("recorded status %d, %d bytes", cw.Status, cw.Bytes)
	}
	if rechecks < len(content)/4096 {
		t.Errorf("%d rechecks for %d slices", rechecks, len(content)/4096)
	}
}
