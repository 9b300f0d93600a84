package bench

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// cacheSizeEnv sets the blob size of BenchmarkCache in MiB (default 1024).
const cacheSizeEnv = "PULLGATE_BENCH_CACHE_MIB"

// BenchmarkCache measures the pull-through cache side by side in one run,
// all against one distribution upstream without auth holding one blob:
//
//   - direct-1, cached-1: one client straight from the upstream, and
//     through the hub from its cache (both read their page cache);
//   - direct-32, cached-32: 32 concurrent clients, aggregate;
//   - cold-32: 32 concurrent clients through the hub right after the entry
//     was evicted: the upstream bytes the hub fetched (counted by a TCP
//     relay in front of the upstream) and aggregate throughput;
//   - distproxy cold-32 and cached-1/32: the same against distribution's
//     own proxy mode (a fresh proxy process, behind the same counting
//     relay);
//   - the hub's CPU seconds per GiB served on the cached path, and its
//     peak RSS during 100 concurrent cached pulls.
//
// Every pull checks status, Content-Length, Docker-Content-Digest and the
// byte count; one pull per path is sha256-verified untimed.
func BenchmarkCache(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv(cacheSizeEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a size in MiB", cacheSizeEnv, v)
		}
		size = n * mib
	}
	const (
		repo = "bench/cache"
		reps = 3
		many = 32
		rssN = 100
	)
	b.Logf("blob %d MiB; load average before: %s", size/mib, loadAvg())
	up := testupstream.StartDistribution(b, testupstream.ProcNoAuth())
	_, layer := up.PushBlobImage(b, repo, "v1", size)
	digest := layer.String()
	relay := startRelay(b, up.Host)

	h := startHubProcess(b, "--cache-size", strconv.FormatInt(4*size/mib+64, 10)+"MiB")
	h.addRegistry(b, "upstream", relay.host, "", "")
	h.mintToken(b)
	hubURL := h.blobURL(relay.host, repo, digest)
	directURL := up.URL + "/v2/" + repo + "/blobs/" + digest

	tr := newClientTransport(rssN)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	buf := make([]byte, readBufSize)
	one := func(what, url string, auth func(*http.Request), hash bool) pullResult {
		b.Helper()
		res, err := pullBlob(client, url, auth, size, digest, hash, buf)
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		return res
	}
	// n concurrent pulls; aggregate MB/s.
	concurrent := func(what, url string, auth func(*http.Request), n int) float64 {
		b.Helper()
		errs := make([]error, n)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				buf := make([]byte, 256<<10)
				<-gate
				_, errs[i] = pullBlob(client, url, auth, size, digest, false, buf)
			})
		}
		start := time.Now()
		close(gate)
		wg.Wait()
		wall := time.Since(start)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("%s: client %d: %v", what, i, err)
			}
		}
		return float64(n) * float64(size) / wall.Seconds() / 1e6
	}

	one("warm-up direct", directURL, nil, true)
	// First hub pull: a cold fill, sha256-verified.
	relay.reset()
	one("hub first pull", hubURL, h.auth, true)
	b.Logf("hub first (cold, single) pull fetched %d upstream bytes", relay.bytes())

	var direct1, cached1 []float64
	hubCPU := &cpuMeter{pid: h.PID}
	// The upstream serving the direct pulls, for reference: what the same
	// bytes cost a registry that serves them straight from its files.
	upCPU := &cpuMeter{pid: up.PID()}
	var directBytes int64
	var cachedBytes int64
	for i := range reps {
		settle()
		if i%2 == 0 {
			upCPU.Start()
			direct1 = append(direct1, one("direct-1", directURL, nil, false).mbps())
			upCPU.Stop()
			directBytes += size
		}
		hubCPU.Start()
		cached1 = append(cached1, one("cached-1", hubURL, h.auth, false).mbps())
		hubCPU.Stop()
		cachedBytes += size
		if i%2 == 1 {
			upCPU.Start()
			direct1 = append(direct1, one("direct-1", directURL, nil, false).mbps())
			upCPU.Stop()
			directBytes += size
		}
	}
	settle()
	upCPU.Start()
	direct32 := concurrent("direct-32", directURL, nil, many)
	upCPU.Stop()
	directBytes += many * size
	settle()
	hubCPU.Start()
	relay.reset()
	u0, s0, _ := procUserSys(h.PID)
	cached32 := concurrent("cached-32", hubURL, h.auth, many)
	u1, s1, _ := procUserSys(h.PID)
	hubCPU.Stop()
	b.Logf("cached-32: hub user %.2f s, system %.2f s for %d MiB", (u1 - u0).Seconds(), (s1 - s0).Seconds(), many*size/mib)
	cachedBytes += many * size
	if n := relay.bytes(); n > 1<<20 {
		b.Fatalf("cached pulls fetched %d bytes from the upstream", n)
	}

	// Peak RSS during 100 concurrent cached pulls.
	settle()
	idle, _, err := procMem(h.PID)
	if err != nil {
		b.Fatal(err)
	}
	sampler := sampleRSS(h.PID, 50*time.Millisecond)
	hubCPU.Start()
	cached100 := concurrent("cached-100", hubURL, h.auth, rssN)
	hubCPU.Stop()
	cachedBytes += rssN * size
	peak, samples, serr := sampler.Stop()
	if serr != nil {
		b.Fatal(serr)
	}

	// Cold: evict, then 32 concurrent pulls.
	h.api(b, "DELETE", "/api/v1/cache/entries/"+digest, nil, nil)
	settle()
	relay.reset()
	cold32 := concurrent("hub cold-32", hubURL, h.auth, many)
	coldUp := relay.bytes()
	one("verify hub after cold", hubURL, h.auth, true)

	// distribution's proxy mode behind the same relay.
	px := testupstream.StartDistribution(b, testupstream.ProcNoAuth(), testupstream.ProcProxy("http://"+relay.host, "", ""))
	pxURL := px.URL + "/v2/" + repo + "/blobs/" + digest
	settle()
	relay.reset()
	distCold32 := concurrent("distproxy cold-32", pxURL, nil, many)
	distColdUp := relay.bytes()
	settle()
	one("verify distproxy", pxURL, nil, true)
	var dist1 []float64
	for range reps {
		settle()
		dist1 = append(dist1, one("distproxy cached-1", pxURL, nil, false).mbps())
	}
	settle()
	dist32 := concurrent("distproxy cached-32", pxURL, nil, many)

	gib := float64(cachedBytes) / (1 << 30)
	b.Logf("direct-1 MB/s: %s; cached-1 MB/s: %s; distproxy cached-1 MB/s: %s", fmtRates(direct1), fmtRates(cached1), fmtRates(dist1))
	b.Logf("hub cached path: %.1f GiB served, %.2f CPU-s; 100 clients: idle RSS %.1f MiB, %d samples, %.0f MB/s aggregate",
		gib, hubCPU.total.Seconds(), float64(idle)/mib, samples, cached100)
	b.Logf("cold-32 upstream bytes: hub %d, distproxy %d (blob %d)", coldUp, distColdUp, size)
	b.Logf("load average after: %s", loadAvg())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(direct1), "direct1-MB/s")
	b.ReportMetric(median(cached1), "cached1-MB/s")
	b.ReportMetric(median(cached1)/median(direct1), "cached1/direct1")
	b.ReportMetric(direct32, "direct32-MB/s")
	b.ReportMetric(cached32, "cached32-MB/s")
	b.ReportMetric(cached32/direct32, "cached32/direct32")
	b.ReportMetric(cold32, "cold32-MB/s")
	b.ReportMetric(cold32/direct32, "cold32/direct32")
	b.ReportMetric(float64(coldUp)/float64(size), "cold32-upstream-blobs")
	b.ReportMetric(distCold32, "distproxy-cold32-MB/s")
	b.ReportMetric(float64(distColdUp)/float64(size), "distproxy-cold32-upstream-blobs")
	b.ReportMetric(median(dist1), "distproxy-cached1-MB/s")
	b.ReportMetric(dist32, "distproxy-cached32-MB/s")
	b.ReportMetric(hubCPU.total.Seconds()/gib, "hub-cached-cpu-s/GiB")
	b.ReportMetric(upCPU.total.Seconds()/(float64(directBytes)/(1<<30)), "upstream-direct-cpu-s/GiB")
	b.ReportMetric(float64(peak)/mib, "cached100-peak-rss-MiB")
}

// relay is a TCP relay in front of an upstream that counts the bytes the
// upstream sends (what a pull-through cache fetched).
type relay struct {
	host string
	n    atomic.Int64
}

func startRelay(b testing.TB, target string) *relay {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &relay{host: ln.Addr().String()}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				buf := make([]byte, 256<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						r.n.Add(int64(n))
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						c.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}()
		}
	}()
	return r
}

func (r *relay) reset()       { r.n.Store(0) }
func (r *relay) bytes() int64 { return r.n.Load() }
