package bench

// Run with:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./e2e/bench/
//
// Each benchmark does its work exactly once whatever b.N is and reports its
// figures with b.ReportMetric (ns/op is suppressed: it would only be the
// wall time of setup plus measurement). See README.md.

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// BenchmarkBlobThroughput1GiB pulls one 1 GiB blob cold with a plain HTTP
// GET, reading to nothing, along three paths side by side:
//
//   - direct: straight from the upstream;
//   - hub: through a real hub (the built pullgate-hub binary as a child
//     process, i.e. as deployed; PULLGATE_BENCH_HUB=inprocess runs
//     server.Run in this process instead, for profiling);
//   - distproxy: through distribution's own pull-through proxy mode with an
//     empty cache (a fresh proxy process per repetition, so every timed run
//     is cold).
//
// For fairness all three read from the same upstream: one distribution
// (docker-registry 2.8) process without auth, holding the blob in its
// filesystem storage. An untimed, sha256-verified direct pull first brings
// the blob into the page cache, so no path pays for the disk.
//
// Each path is pulled five times (order rotated per repetition, a new TCP
// connection per pull, dirty pages synced to disk before each pull so the
// previous proxy's cache writeback does not land on the next path) and the
// median MB/s (10^6 bytes/s) is reported. Each
// timed pull checks status, Content-Length, Docker-Content-Digest and the
// byte count; the hub path and the distribution proxy's cache are then also
// read once more untimed with a sha256 check, so a broken path cannot look
// fast. (Hashing is kept out of timed pulls: on two cores it would steal
// CPU from the process being measured.) With a child-process hub it also
// reports the hub's CPU time per GiB proxied (user+system, mean over the
// timed pulls), which is less sensitive to machine noise than MB/s.
func BenchmarkBlobThroughput1GiB(b *testing.B) {
	const (
		size = 1 << 30
		repo = "bench/big"
		reps = 5
	)
	b.Logf("load average before: %s", loadAvg())
	up := testupstream.StartDistribution(b, testupstream.ProcNoAuth())
	t0 := time.Now()
	_, layer := up.PushBlobImage(b, repo, "v1", size)
	digest := layer.String()
	b.Logf("pushed a %d MiB layer %s to %s in %s", size/mib, digest, up.Host, time.Since(t0).Round(time.Millisecond))

	h := startHub(b, true)
	h.addRegistry(b, "upstream", up.Host, "", "")
	h.mintToken(b)

	buf := make([]byte, readBufSize)
	pull := func(what, url string, auth func(*http.Request), hashBody bool) pullResult {
		b.Helper()
		tr := newClientTransport(1)
		defer tr.CloseIdleConnections()
		res, err := pullBlob(&http.Client{Transport: tr}, url, auth, size, digest, hashBody, buf)
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		return res
	}
	directURL := up.URL + "/v2/" + repo + "/blobs/" + digest
	hubURL := h.blobURL(up.Host, repo, digest)

	pull("warm-up direct", directURL, nil, true)

	type path struct {
		name string
		url  string
		auth func(*http.Request)
		mbps []float64
	}
	direct := &path{name: "direct", url: directURL}
	viaHub := &path{name: "hub", url: hubURL, auth: h.auth}
	dist := &path{name: "distproxy"}
	hubCPU := &cpuMeter{pid: h.PID}
	for i := range reps {
		// A fresh, empty pull-through cache of the same upstream, started
		// before any timed pull of this repetition. Like the upstream it
		// takes anonymous pulls, so its client request is the direct one.
		px := testupstream.StartDistribution(b, testupstream.ProcNoAuth(), testupstream.ProcProxy(up.URL, "", ""))
		dist.url = px.URL + "/v2/" + repo + "/blobs/" + digest
		order := []*path{direct, viaHub, dist}
		order = append(order[i%len(order):], order[:i%len(order)]...)
		for _, p := range order {
			settle()
			if p == viaHub {
				hubCPU.Start()
			}
			res := pull(p.name, p.url, p.auth, false)
			if p == viaHub {
				hubCPU.Stop()
			}
			p.mbps = append(p.mbps, res.mbps())
		}
		if i == 0 {
			pull("verify hub", hubURL, h.auth, true)
			pull("verify distproxy cache", dist.url, nil, true)
		}
	}

	md, mh, mp := median(direct.mbps), median(viaHub.mbps), median(dist.mbps)
	for _, p := range []*path{direct, viaHub, dist} {
		b.Logf("%-9s MB/s per repetition: %s", p.name, fmtRates(p.mbps))
	}
	b.Logf("every pull checked for size and digest header; body sha256 verified direct, via hub and from the proxy cache")
	b.Logf("hub: %s; load average after: %s", h.Mode, loadAvg())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(md, "direct-MB/s")
	b.ReportMetric(mh, "hub-MB/s")
	b.ReportMetric(mp, "distproxy-MB/s")
	b.ReportMetric(mh/md, "hub/direct")
	b.ReportMetric(mp/md, "distproxy/direct")
	if h.PID != 0 {
		b.ReportMetric(hubCPU.total.Seconds()/reps, "hub-cpu-s/GiB")
	}
}

// manifestAccept is what container runtimes send when resolving a tag.
var manifestAccept = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// BenchmarkManifestHEAD measures the latency the hub adds to the request a
// runtime makes most: HEAD of a manifest by tag. The upstream is an
// in-process registry with Docker token auth; the direct path uses a valid
// upstream bearer token (go-containerregistry's transport), the hub path an
// install token, with the hub's upstream token already cached by a warm-up.
// Both run sequentially over keep-alive connections, in alternating
// batches (the first path of each batch alternating too) so machine noise
// hits both alike. Every response must be 200 with the right digest. With
// a child-process hub it also reports the hub's CPU time per request
// (measured over the hub batches, 10 ms tick resolution).
func BenchmarkManifestHEAD(b *testing.B) {
	const (
		repo   = "bench/small"
		tag    = "v1"
		n      = 2000
		batch  = 50
		warmup = 200
	)
	up := testupstream.StartInProcess(b, testupstream.WithTokenAuth("benchuser", "benchpass"))
	img := up.PushRandomImage(b, repo, tag, 2, 1024)
	d, err := img.Digest()
	if err != nil {
		b.Fatal(err)
	}
	digest := d.String()

	h := startHub(b, true)
	h.addRegistry(b, "upstream", up.Host, up.User, up.Password)
	h.mintToken(b)

	reg, err := name.NewRegistry(up.Host, name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	directTr := newClientTransport(1)
	hubTr := newClientTransport(1)
	defer directTr.CloseIdleConnections()
	defer hubTr.CloseIdleConnections()
	rt, err := transport.NewWithContext(ctx, reg, up.Auth(), directTr, []string{reg.Repo(repo).Scope(transport.PullScope)})
	if err != nil {
		b.Fatalf("upstream token: %v", err)
	}
	directClient := &http.Client{Transport: rt}
	hubClient := &http.Client{Transport: hubTr}

	type path struct {
		name   string
		client *http.Client
		url    string
		auth   func(*http.Request)
		lat    []time.Duration
	}
	direct := &path{name: "direct", client: directClient, url: up.URL + "/v2/" + repo + "/manifests/" + tag}
	viaHub := &path{name: "hub", client: hubClient, url: h.manifestURL(up.Host, repo, tag), auth: h.auth}
	head := func(p *path) time.Duration {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.url, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range manifestAccept {
			req.Header.Add("Accept", a)
		}
		if p.auth != nil {
			p.auth(req)
		}
		start := time.Now()
		resp, err := p.client.Do(req)
		if err != nil {
			b.Fatalf("%s: HEAD %s: %v", p.name, p.url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: HEAD %s: %s", p.name, p.url, resp.Status)
		}
		if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
			b.Fatalf("%s: HEAD %s: Docker-Content-Digest %q, want %s", p.name, p.url, got, digest)
		}
		return elapsed
	}

	for range warmup {
		head(direct)
		head(viaHub)
	}
	tokensBefore := up.TokenRequests()
	hubCPU := &cpuMeter{pid: h.PID}
	for i := range n / batch {
		order := []*path{direct, viaHub}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range order {
			if p == viaHub {
				hubCPU.Start()
			}
			for range batch {
				p.lat = append(p.lat, head(p))
			}
			if p == viaHub {
				hubCPU.Stop()
			}
		}
	}
	if extra := up.TokenRequests() - tokensBefore; extra != 0 {
		b.Logf("note: the upstream issued %d tokens during the measurement (expected 0: cached)", extra)
	}

	dp50, dp99 := percentile(direct.lat, 50), percentile(direct.lat, 99)
	hp50, hp99 := percentile(viaHub.lat, 50), percentile(viaHub.lat, 99)
	b.Logf("hub: %s; %d HEADs per path in batches of %d", h.Mode, n, batch)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(micros(dp50), "direct-p50-us")
	b.ReportMetric(micros(dp99), "direct-p99-us")
	b.ReportMetric(micros(hp50), "hub-p50-us")
	b.ReportMetric(micros(hp99), "hub-p99-us")
	b.ReportMetric(micros(hp50-dp50), "added-p50-us")
	if h.PID != 0 {
		b.ReportMetric(micros(hubCPU.total)/n, "hub-cpu-us/req")
	}
}

// BenchmarkPeakRSS100Clients has 100 concurrent clients each GET the whole
// of one 64 MiB blob through the hub (always the built binary as a child
// process, so its RSS is its own) from a distribution upstream without
// auth, while sampling the hub's VmRSS every 50 ms; VmHWM (the kernel's own
// peak RSS for the process, startup included) is read at the end. Every
// client's byte count is checked; one sha256-verified pull first warms the
// hub's upstream connection.
func BenchmarkPeakRSS100Clients(b *testing.B) {
	const (
		size    = 64 << 20
		repo    = "bench/mid"
		clients = 100
	)
	up := testupstream.StartDistribution(b, testupstream.ProcNoAuth())
	_, layer := up.PushBlobImage(b, repo, "v1", size)
	digest := layer.String()

	h := startHub(b, false)
	h.addRegistry(b, "upstream", up.Host, "", "")
	h.mintToken(b)
	url := h.blobURL(up.Host, repo, digest)

	tr := newClientTransport(clients)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	if _, err := pullBlob(client, url, h.auth, size, digest, true, make([]byte, readBufSize)); err != nil {
		b.Fatalf("verification pull: %v", err)
	}
	idle, _, err := procMem(h.PID)
	if err != nil {
		b.Fatal(err)
	}

	sampler := sampleRSS(h.PID, 50*time.Millisecond)
	startGate := make(chan struct{})
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			<-startGate
			_, errs[i] = pullBlob(client, url, h.auth, size, digest, false, buf)
		})
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	wall := time.Since(start)
	peak, samples, serr := sampler.Stop()
	_, hwm, err := procMem(h.PID)
	if err != nil {
		b.Fatal(err)
	}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				b.Errorf("client %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		b.Fatalf("%d of %d clients failed", failed, clients)
	}
	if serr != nil {
		b.Fatalf("sampling RSS: %v", serr)
	}
	total := float64(clients) * size
	b.Logf("hub pid %d (%s): idle RSS %.1f MiB before the run, %d RSS samples during %s",
		h.PID, h.Mode, float64(idle)/mib, samples, wall.Round(time.Millisecond))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(peak)/mib, "peak-rss-MiB")
	b.ReportMetric(float64(hwm)/mib, "vmhwm-MiB")
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(total/wall.Seconds()/1e6, "aggregate-MB/s")
}
