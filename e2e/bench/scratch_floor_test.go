package bench

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// Scratch: a minimal userspace copy proxy vs the hub, both in-process.
func BenchmarkScratchFloor(b *testing.B) {
	const size = 1 << 30
	up := testupstream.StartDistribution(b, testupstream.ProcNoAuth())
	_, layer := up.PushBlobImage(b, "bench/big", "v1", size)
	digest := layer.String()
	h := startHub(b, true)
	h.addRegistry(b, "upstream", up.Host, "", "")
	h.mintToken(b)
	tr := &http.Transport{ReadBufferSize: 256 << 10, WriteBufferSize: 64 << 10}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := tr.RoundTrip(&http.Request{Method: "GET", URL: mustURL(up.URL + r.URL.Path), Header: http.Header{}})
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 256<<10)
		io.CopyBuffer(struct{ io.Writer }{w}, resp.Body, buf)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	buf := make([]byte, readBufSize)
	pull := func(url string, auth func(*http.Request)) float64 {
		ct := newClientTransport(1)
		defer ct.CloseIdleConnections()
		res, err := pullBlob(&http.Client{Transport: ct}, url, auth, size, digest, false, buf)
		if err != nil {
			b.Fatal(err)
		}
		return res.mbps()
	}
	var d, f, hh []float64
	for range 5 {
		settle()
		d = append(d, pull(up.URL+"/v2/bench/big/blobs/"+digest, nil))
		settle()
		f = append(f, pull("http://"+ln.Addr().String()+"/v2/bench/big/blobs/"+digest, nil))
		settle()
		hh = append(hh, pull(h.blobURL(up.Host, "bench/big", digest), h.auth))
	}
	b.Logf("direct %v\nfloor %v\nhub %v", d, f, hh)
	b.ReportMetric(median(d), "direct-MB/s")
	b.ReportMetric(median(f), "floor-MB/s")
	b.ReportMetric(median(hh), "hub-MB/s")
	_ = time.Now
}

func mustURL(s string) *url.URL { u, err := url.Parse(s); if err != nil { panic(err) }; return u }
