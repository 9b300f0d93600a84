package e2eproc

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// Agent is a running `pullgate-agent run`.
type Agent struct {
	*Proc
	Bin      string
	Socket   string
	StateDir string
	Metrics  string // host:port of /metrics and /readyz
}

// StartAgent runs `pullgate-agent run` enrolled with joinToken on natsURL
// (one URL or a comma-separated list), named nodeName; extra flags are
// appended. It returns once the agent is ready.
func StartAgent(t testing.TB, natsURL, joinToken, nodeName string, extra ...string) *Agent {
	t.Helper()
	return StartAgentIn(t, nil, "127.0.0.1", natsURL, joinToken, nodeName, extra...)
}

// StartAgentIn is StartAgent with the agent run under wrap (e.g. nsenter
// into a network namespace of the test's), its metrics on metricsHost.
func StartAgentIn(t testing.TB, wrap []string, metricsHost, natsURL, joinToken, nodeName string, extra ...string) *Agent {
	t.Helper()
	dir := t.TempDir()
	a := &Agent{Bin: AgentBinary(t), Socket: filepath.Join(dir, "run", "agent.sock"), StateDir: filepath.Join(dir, "state"),
		Metrics: fmt.Sprintf("%s:%d", metricsHost, testupstream.FreePort(t))}
	tokenFile := filepath.Join(dir, "join-token")
	if err := os.WriteFile(tokenFile, []byte(joinToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "--nats-url", natsURL, "--join-token-file", tokenFile,
		"--state-dir", a.StateDir, "--socket", a.Socket, "--metrics-listen", a.Metrics, "--node-name", nodeName, "--log-level", "debug"},
		extra...)
	bin := a.Bin
	if len(wrap) > 0 {
		bin, args = wrap[0], append(append(wrap[1:len(wrap):len(wrap)], a.Bin), args...)
	}
	a.Proc = Start(t, "agent "+nodeName, dir, nil, bin, args...)
	WaitHTTP(t, "http://"+a.Metrics+"/readyz", a.Proc)
	return a
}

// Metric is the value of the agent's metric name (its first series), or
// "" when it has none. A name with its labels (`x_total{result="ok"}`)
// picks that series.
func (a *Agent) Metric(t testing.TB, name string) string {
	resp, err := http.Get("http://" + a.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}
