package bench

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readBufSize is the client's read size: large, so that the client spends
// as little CPU as possible and every path is limited by the server side.
const readBufSize = 1 << 20

// newClientTransport is the client side of every benchmark: plain HTTP/1.1
// keep-alive, no proxy from the environment, no compression.
func newClientTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ReadBufferSize:      64 << 10,
	}
}

// pullResult is one blob GET.
type pullResult struct {
	bytes   int64
	elapsed time.Duration // request sent to last byte read
	sha256  string        // hex, only when hashing was asked for
}

// mbps is the pull's rate in MB/s (10^6 bytes per second).
func (r pullResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// pullBlob GETs url, reads the whole body and
// checks the status, Content-Length, byte count and Docker-Content-Digest.
// With hashBody it also sha256es the body (costing client CPU, so timed
// pulls leave it off) and checks it against digest.
func pullBlob(client *http.Client, url string, auth func(*http.Request), wantSize int64, digest string, hashBody bool, buf []byte) (pullResult, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return pullResult{}, err
	}
	if auth != nil {
		auth(req)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return pullResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return pullResult{}, fmt.Errorf("GET %s: %s: %s", url, resp.Status, msg)
	}
	if resp.ContentLength != wantSize {
		return pullResult{}, fmt.Errorf("GET %s: Content-Length %d, want %d", url, resp.ContentLength, wantSize)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != digest {
		return pullResult{}, fmt.Errorf("GET %s: Docker-Content-Digest %s, want %s", url, got, digest)
	}
	var h hash.Hash
	if hashBody {
		h = sha256.New()
	}
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			n += int64(m)
			if h != nil {
				h.Write(buf[:m])
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return pullResult{}, fmt.Errorf("GET %s: after %d bytes: %w", url, n, rerr)
		}
	}
	res := pullResult{bytes: n, elapsed: time.Since(start)}
	if n != wantSize {
		return res, fmt.Errorf("GET %s: read %d bytes, want %d", url, n, wantSize)
	}
	if h != nil {
		res.sha256 = hex.EncodeToString(h.Sum(nil))
		if "sha256:"+res.sha256 != digest {
			return res, fmt.Errorf("GET %s: body sha256:%s, want %s", url, res.sha256, digest)
		}
	}
	return res, nil
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the q-th percentile (0 < q <= 100) of ds by the
// nearest-rank method.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	rank := int(math.Ceil(q / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// fmtRates formats MB/s figures for a log line.
func fmtRates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, " ")
}

// procMem reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for key, dst := range map[string]*int64{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("parsing %q: %w", line, err)
				}
				*dst = kb << 10
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM", pid)
	}
	return rss, hwm, nil
}

// procCPU is the user+system CPU time a process has used so far, threads
// that have exited included (from /proc/<pid>/stat, 10 ms resolution).
func procCPU(pid int) (time.Duration, error) {
	u, s, err := procUserSys(pid)
	return u + s, err
}

// procUserSys is a process's user and system CPU time so far (utime and
// stime, fields 14 and 15 of /proc/<pid>/stat).
func procUserSys(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	var ticks [2]int64
	for j, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks[j] = n
	}
	const userHZ = 100 // USER_HZ is 100 on every Linux architecture Go supports
	tick := time.Second / userHZ
	return time.Duration(ticks[0]) * tick, time.Duration(ticks[1]) * tick, nil
}

// cpuMeter measures a child hub's CPU time over an interval; it measures
// nothing for an in-process hub (pid 0), whose CPU is mixed with the
// client's.
type cpuMeter struct {
	pid   int
	total time.Duration
	start time.Duration
}

func (m *cpuMeter) Start() {
	if m.pid != 0 {
		m.start, _ = procCPU(m.pid)
	}
}

func (m *cpuMeter) Stop() {
	if m.pid != 0 {
		end, _ := procCPU(m.pid)
		m.total += end - m.start
	}
}

// rssSampler polls a process's VmRSS at a fixed interval and remembers the
// largest value seen.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	peak    int64
	samples int
	err     error
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rss, _, err := procMem(pid)
			s.mu.Lock()
			if err != nil && s.err == nil {
				s.err = err
			}
			s.peak = max(s.peak, rss)
			s.samples++
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak VmRSS and the number of samples.
func (s *rssSampler) Stop() (peak int64, samples int, err error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.samples, s.err
}

const mib = 1 << 20

// settle writes dirty pages back (a distribution proxy just cached 1 GiB)
// so that kernel writeback does not compete with the next timed pull.
func settle() {
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
}

// loadAvg is the first three fields of /proc/loadavg: other work on the
// machine skews every figure, so the benchmarks log it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
