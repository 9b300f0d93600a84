package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/wire"
)

// nodeHub is an in-process hub with its embedded NATS server, set up with
// a workspace, a credential for registry.corp, a single-workspace cluster
// and an install on it.
type nodeHub struct {
	*hub
	nats, join string
}

func startNodeHub(b *testing.B) *nodeHub {
	b.Helper()
	natsAddr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(b))
	h := &nodeHub{hub: startHubInProcess(b, natsAddr), nats: "nats://" + natsAddr}
	h.api(b, "POST", "/api/v1/workspaces/bench/registries", api.CreateRegistryRequest{Name: "corp", Host: "registry.corp",
		Endpoint: "http://127.0.0.1:1", Username: "u", Password: "never-contacted", AllowPrivateNetwork: true}, nil)
	var jt api.JoinToken
	h.api(b, "POST", "/api/v1/clusters", api.CreateClusterRequest{Name: "edge", Workspace: "bench"}, &jt)
	h.join = jt.JoinToken
	h.api(b, "POST", "/api/v1/workspaces/bench/installs", api.CreateInstallRequest{Name: "web", Cluster: "edge", AllRepos: true}, nil)
	return h
}

// startAgents runs n real agents (agent.Agent, the code pullgate-agent
// runs) in this process, each enrolled as its own node.
func startAgents(b *testing.B, h *nodeHub, n int, dir string) []*agent.Agent {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	agents := make([]*agent.Agent, n)
	for i := range agents {
		d := filepath.Join(dir, strconv.Itoa(i))
		a, err := agent.New(agent.WithNATSURL(h.nats), agent.WithJoinToken(jointoken.Static(h.join)),
			agent.WithStateDir(d), agent.WithSocket(filepath.Join(d, "a.sock")), agent.WithMetricsListen(""),
			agent.WithNodeName(fmt.Sprintf("node-%d", i)), agent.WithLogger(slog.New(slog.DiscardHandler)),
			agent.WithResyncInterval(time.Hour), agent.WithExternalMirrors("registry.corp"))
		if err != nil {
			b.Fatal(err)
		}
		agents[i] = a
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, a := range agents {
		for {
			if ok, _ := a.Ready(); ok {
				break
			}
			if time.Now().After(deadline) {
				_, why := a.Ready()
				b.Fatalf("agent not ready after 2m: %s", why)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return agents
}

// warm fills every agent's cache with a token for image.
func warm(b *testing.B, agents []*agent.Agent, image string) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(agents))
	sem := make(chan struct{}, 32)
	for _, a := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := a.Credentials(context.Background(), wire.CredentialsRequest{Image: image}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("warm: %v", err)
	}
	for _, a := range agents {
		if a.CacheStatus().Entries != 1 {
			b.Fatalf("agent cache holds %d entries after warm-up, want 1", a.CacheStatus().Entries)
		}
	}
}

// BenchmarkRevocationFanout1000 measures, for 1,000 connected agents, the
// time from the `install disable` API call returning until each agent has
// dropped the install's cached token. Agents are observed by sweeping
// their cache status, so the figures include up to one sweep (well under a
// millisecond for 1,000 agents) of observation delay.
func BenchmarkRevocationFanout1000(b *testing.B) {
	n := 1000
	if s := os.Getenv("PULLGATE_BENCH_AGENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	h := startNodeHub(b)
	start := time.Now()
	agents := startAgents(b, h, n, b.TempDir())
	b.Logf("%d agents enrolled and connected in %v", n, time.Since(start).Round(time.Millisecond))
	const rounds = 3
	var all []time.Duration
	var apiTimes, fromStart []time.Duration
	for round := 0; round < rounds; round++ {
		h.api(b, "POST", "/api/v1/workspaces/bench/installs/web/enable", nil, nil)
		warm(b, agents, "registry.corp/org/app:v1")
		purged := make([]time.Duration, n)
		done := make([]bool, n)
		callStart := time.Now()
		h.api(b, "POST", "/api/v1/workspaces/bench/installs/web/disable", nil, nil)
		t0 := time.Now()
		apiTimes = append(apiTimes, t0.Sub(callStart))
		left := n
		for left > 0 && time.Since(t0) < 10*time.Second {
			for i, a := range agents {
				if !done[i] && a.CacheStatus().Entries == 0 {
					done[i], purged[i] = true, time.Since(t0)
					left--
				}
			}
		}
		if left > 0 {
			b.Fatalf("round %d: %d of %d agents still hold the revoked token after 10s", round, left, n)
		}
		all = append(all, purged...)
		for _, d := range purged {
			fromStart = append(fromStart, d+apiTimes[len(apiTimes)-1])
		}
	}
	b.ReportMetric(float64(len(agents)), "agents")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(all, 1)), "max-ms")
	b.ReportMetric(ms(percentile(apiTimes, 0.5)), "api-call-ms")
	// From the moment the operator's call was sent (includes the API call).
	b.ReportMetric(ms(percentile(fromStart, 0.99)), "p99-from-call-start-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkColdToken measures a kubelet credential request that misses the
// agent's cache: the helper binary exec'd with the request JSON, agent,
// NATS, hub token service, and back. Each request names a new repository.
func BenchmarkColdToken(b *testing.B) {
	h := startNodeHub(b)
	dir := b.TempDir()
	agents := startAgents(b, h, 1, dir)
	<-agents[0].Listening()
	helper := buildHelper(b)
	socket := filepath.Join(dir, "0", "a.sock")
	const n = 300
	var cold, warmT []time.Duration
	for i := 0; i < n; i++ {
		image := fmt.Sprintf("registry.corp/org/app-%d:v1", i)
		cold = append(cold, execHelper(b, helper, socket, image))
		warmT = append(warmT, execHelper(b, helper, socket, image))
	}
	// The floor: exec of a do-nothing static Go binary on this machine.
	var floor []time.Duration
	hello := buildHello(b)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := exec.Command(hello).Run(); err != nil {
			b.Fatal(err)
		}
		floor = append(floor, time.Since(start))
	}
	b.ReportMetric(ms(percentile(floor, 0.5)), "exec-floor-p50-ms")
	b.ReportMetric(ms(percentile(cold, 0.5)), "cold-p50-ms")
	b.ReportMetric(ms(percentile(cold, 0.99)), "cold-p99-ms")
	b.ReportMetric(ms(percentile(warmT, 0.5)), "warm-p50-ms")
	b.ReportMetric(ms(percentile(warmT, 0.99)), "warm-p99-ms")
}

func buildHelper(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "pullgate-credential-provider")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./helper/cmd/pullgate-credential-provider")
	cmd.Dir = testupstream.RepoRoot(b)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build helper: %v\n%s", err, out)
	}
	return bin
}

func execHelper(b *testing.B, helper, socket, image string) time.Duration {
	req := fmt.Sprintf(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":%q}`, image)
	cmd := exec.Command(helper, "--socket", socket)
	cmd.Stdin = strings.NewReader(req)
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("helper: %v", err)
	}
	d := time.Since(start)
	if !strings.Contains(out.String(), `"password"`) {
		b.Fatalf("helper answered without credentials: %s", out.String())
	}
	return d
}

// buildHello builds a static Go binary that does nothing: the cost of
// starting any Go program here.
func buildHello(b *testing.B) string {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build hello: %v\n%s", err, out)
	}
	return bin
}
