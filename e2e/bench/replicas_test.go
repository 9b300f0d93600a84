package bench

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// Several hub replicas (child processes) on one PostgreSQL, as the Helm
// chart runs them: same master key and admin token, each with its own data
// dir (and so its own local cache). They need Debian's postgresql package:
// each benchmark starts a private server with .ci/postgres.sh, which it may
// stop and start again.

// replicaBlobEnv sets the blob size of BenchmarkReplicasCachedThroughput
// in MiB (default 256).
const replicaBlobEnv = "PULLGATE_BENCH_REPLICA_MIB"

// pgServer is a private PostgreSQL cluster in a temp dir, on a unix socket.
type pgServer struct {
	dir, dsn string
}

// postgresSh runs .ci/postgres.sh start|stop DIR.
func postgresSh(b testing.TB, cmd, dir string) ([]byte, error) {
	return exec.Command(filepath.Join(testupstream.RepoRoot(b), ".ci", "postgres.sh"), cmd, dir).CombinedOutput()
}

func startPostgres(b testing.TB) *pgServer {
	b.Helper()
	// Not under b.TempDir(): the server runs as the postgres user, which
	// must reach the directory.
	dir, err := os.MkdirTemp("", "pullgate-bench-pg-")
	if err != nil {
		b.Fatal(err)
	}
	p := &pgServer{dir: dir}
	out, err := postgresSh(b, "start", dir)
	if err != nil {
		os.RemoveAll(dir)
		b.Skipf("no PostgreSQL for the replica benchmarks (.ci/postgres.sh start: %v: %s)", err, out)
	}
	p.dsn = strings.TrimSpace(string(out))
	b.Cleanup(func() {
		p.stop(b)
		os.RemoveAll(dir)
	})
	return p
}

func (p *pgServer) stop(b testing.TB) {
	b.Helper()
	if out, err := postgresSh(b, "stop", p.dir); err != nil {
		b.Logf("stop PostgreSQL: %v: %s", err, out)
	}
}

// restart starts the stopped cluster again with its data (postgres.sh
// start on a DIR that already holds a cluster).
func (p *pgServer) restart(b testing.TB) {
	b.Helper()
	if out, err := postgresSh(b, "start", p.dir); err != nil {
		b.Fatalf("start PostgreSQL again: %v: %s", err, out)
	}
}

// startReplicas starts n hubs on the database one after the other (the
// first creates the schema, the signing key, the workspace and the
// install; the others get its master key and admin token).
func startReplicas(b testing.TB, n int, dsn string, extra ...string) []*hub {
	b.Helper()
	args := append([]string{"--database", dsn}, extra...)
	first := launchHubProcess(b, filepath.Join(b.TempDir(), "data"), args...)
	first.setup(b)
	hubs := []*hub{first}
	for range n - 1 {
		dir := filepath.Join(b.TempDir(), "data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		for _, f := range []string{"master.key", "admin.token"} {
			raw, err := os.ReadFile(filepath.Join(first.dataDir, f))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), raw, 0o600); err != nil {
				b.Fatal(err)
			}
		}
		h := launchHubProcess(b, dir, args...)
		h.admin = first.admin
		hubs = append(hubs, h)
	}
	return hubs
}

// share gives every replica the first one's install token.
func share(hubs []*hub) {
	for _, h := range hubs[1:] {
		h.Token = hubs[0].Token
	}
}

// BenchmarkReplicasCachedThroughput: one blob, warmed into every
// replica's local cache (one pull through each, sha256-verified), then
// pulled by 6 concurrent clients (2 pulls each) spread round-robin over 1,
// 2 and 3 replicas: the aggregate MB/s of cached serving per replica count.
func BenchmarkReplicasCachedThroughput(b *testing.B) {
	size := int64(256 * mib)
	if v := os.Getenv(replicaBlobEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a size in MiB", replicaBlobEnv, v)
		}
		size = n * mib
	}
	const (
		repo    = "bench/replicas"
		clients = 6
		each    = 2
	)
	b.Logf("blob %d MiB, %d clients x %d pulls; load average before: %s", size/mib, clients, each, loadAvg())
	pg := startPostgres(b)
	up := testupstream.StartDistribution(b, testupstream.ProcNoAuth())
	_, layer := up.PushBlobImage(b, repo, "v1", size)
	digest := layer.String()
	hubs := startReplicas(b, 3, pg.dsn, "--cache-size", strconv.FormatInt(2*size/mib+64, 10)+"MiB")
	hubs[0].addRegistry(b, "upstream", up.Host, "", "")
	hubs[0].mintToken(b)
	share(hubs)

	tr := newClientTransport(clients)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	buf := make([]byte, readBufSize)
	for i, h := range hubs {
		if _, err := pullBlob(client, h.blobURL(up.Host, repo, digest), h.auth, size, digest, true, buf); err != nil {
			b.Fatalf("warm replica %d: %v", i, err)
		}
	}
	for n := 1; n <= len(hubs); n++ {
		settle()
		errs := make([]error, clients)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				buf := make([]byte, 256<<10)
				<-gate
				for k := range each {
					h := hubs[(c*each+k)%n]
					if _, err := pullBlob(client, h.blobURL(up.Host, repo, digest), h.auth, size, digest, false, buf); err != nil {
						errs[c] = err
						return
					}
				}
			})
		}
		start := time.Now()
		close(gate)
		wg.Wait()
		wall := time.Since(start)
		for c, err := range errs {
			if err != nil {
				b.Fatalf("%d replicas: client %d: %v", n, c, err)
			}
		}
		mbps := float64(clients*each) * float64(size) / wall.Seconds() / 1e6
		b.ReportMetric(mbps, fmt.Sprintf("%dreplica-MB/s", n))
		b.Logf("%d replica(s): %.0f MB/s aggregate over %v; load average %s", n, mbps, wall.Round(time.Millisecond), loadAvg())
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRevokeToRefusalAcrossReplicas: an install token that replica B
// accepts; the install is disabled through replica A's API; B is polled
// with a manifest HEAD until it refuses. The gap is from the moment A's
// API call returned to B's first refusal (p50/p99 over 100 revokes), and
// the share of revokes where B's very first request after the return was
// already refused (it must be all: live state is read per request).
func BenchmarkRevokeToRefusalAcrossReplicas(b *testing.B) {
	const (
		repo  = "bench/revoke"
		turns = 100
	)
	pg := startPostgres(b)
	up := testupstream.StartInProcess(b)
	up.PushRandomImage(b, repo, "v1", 1, 1024)
	hubs := startReplicas(b, 2, pg.dsn, "--cache=off")
	a, bb := hubs[0], hubs[1]
	a.addRegistry(b, "upstream", up.Host, "", "")
	client := &http.Client{Transport: newClientTransport(4)}
	head := func(h *hub, tok string) int {
		req, _ := http.NewRequest(http.MethodHead, h.manifestURL(up.Host, repo, "v1"), nil)
		req.SetBasicAuth("bench", tok)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("HEAD via replica: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var gaps, calls []time.Duration
	first := 0
	for i := range turns {
		a.mintToken(b)
		if code := head(bb, a.Token); code != http.StatusOK {
			b.Fatalf("turn %d: replica B answered %d for a live token", i, code)
		}
		t0 := time.Now()
		a.api(b, "POST", "/api/v1/workspaces/bench/installs/bench/disable", nil, nil)
		t1 := time.Now()
		polls := 0
		for {
			polls++
			code := head(bb, a.Token)
			if code == http.StatusUnauthorized {
				break
			}
			if code != http.StatusOK || time.Since(t1) > 10*time.Second {
				b.Fatalf("turn %d: replica B answered %d %v after the revoke", i, code, time.Since(t1))
			}
		}
		gaps = append(gaps, time.Since(t1))
		calls = append(calls, t1.Sub(t0))
		if polls == 1 {
			first++
		}
		a.api(b, "POST", "/api/v1/workspaces/bench/installs/bench/enable", nil, nil)
	}
	b.ReportMetric(ms(percentile(gaps, 50)), "gap-p50-ms")
	b.ReportMetric(ms(percentile(gaps, 99)), "gap-p99-ms")
	b.ReportMetric(ms(percentile(calls, 50)), "revoke-call-p50-ms")
	b.ReportMetric(float64(first)/float64(turns), "refused-on-first-request")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d revokes via A, refusal polled at B; load average %s", turns, loadAvg())
}

// BenchmarkPostgresRecovery: three replicas pull through; PostgreSQL is
// stopped for a while (PULLGATE_BENCH_PG_DOWN, default 5s) and started
// again; every replica is polled (a manifest HEAD with a live token every
// 10 ms) from the moment PostgreSQL accepts connections again until it
// serves: the time each hub takes to recover, without a restart.
func BenchmarkPostgresRecovery(b *testing.B) {
	down := 5 * time.Second
	if v := os.Getenv("PULLGATE_BENCH_PG_DOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("PULLGATE_BENCH_PG_DOWN=%q: %v", v, err)
		}
		down = d
	}
	const repo = "bench/pgdown"
	pg := startPostgres(b)
	up := testupstream.StartInProcess(b)
	up.PushRandomImage(b, repo, "v1", 1, 1024)
	hubs := startReplicas(b, 3, pg.dsn, "--cache=off")
	hubs[0].addRegistry(b, "upstream", up.Host, "", "")
	hubs[0].mintToken(b)
	share(hubs)
	client := &http.Client{Transport: newClientTransport(8), Timeout: 5 * time.Second}
	head := func(h *hub) int {
		req, _ := http.NewRequest(http.MethodHead, h.manifestURL(up.Host, repo, "v1"), nil)
		h.auth(req)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, h := range hubs {
		if code := head(h); code != http.StatusOK {
			b.Fatalf("replica %d before the outage: %d", i, code)
		}
	}
	pg.stop(b)
	time.Sleep(down)
	during := map[int]int{}
	for _, h := range hubs {
		during[head(h)]++
	}
	pg.restart(b)
	t0 := time.Now()
	rec := make([]time.Duration, len(hubs))
	var wg sync.WaitGroup
	for i, h := range hubs {
		wg.Go(func() {
			for head(h) != http.StatusOK {
				if time.Since(t0) > 2*time.Minute {
					rec[i] = -1
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			rec[i] = time.Since(t0)
		})
	}
	wg.Wait()
	var worst time.Duration
	for i, d := range rec {
		if d < 0 {
			b.Fatalf("replica %d not serving 2 minutes after PostgreSQL returned; log:\n%s", i, hubs[i].logTail(20))
		}
		worst = max(worst, d)
		b.ReportMetric(ms(d), fmt.Sprintf("replica%d-recovery-ms", i))
	}
	b.ReportMetric(ms(worst), "all-recovered-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("PostgreSQL down %v; answers during the outage (status: count) %v; load average %s", down, during, loadAvg())
}
