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
	dir := t.TempDir()
	a := &Agent{Bin: AgentBinary(t), Socket: filepath.Join(dir, "run", "agent.sock"), StateDir: filepath.Join(dir, "state"),
		Metrics: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))}
	tokenFile := filepath.Join(dir, "join-token")
	if err := os.WriteFile(tokenFile, []byte(joinToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Proc = Start(t, "agent "+nodeName, dir, nil, a.Bin, append([]string{"run", "--nats-url", natsURL, "--join-token-file", tokenFile,
		"--state-dir", a.StateDir, "--socket", a.Socket, "--metrics-listen", a.Metrics, "--node-name", nodeName, "--log-level", "debug"},
		extra...)...)
	WaitHTTP(t, "http://"+a.Metrics+"/readyz", a.Proc)
	return a
}

// Metric is the value of the agent's metric name (its first series), or
// "" when it has none.
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
