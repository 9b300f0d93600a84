//go:build e2e_ha

package ha

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/internal/testtls"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/internal/testweed"
	"github.com/pullgate/pullgate/pkg/wire"
)

// The suite's namespace and the agent namespace are joined by a veth
// pair; the NATS servers listen on the suite's end, so that both agents
// reach them and one of them can be cut off alone.
const (
	hostIP  = "10.251.0.1"
	agentIP = "10.251.0.2"
)

// env is the running topology.
type env struct {
	t          *testing.T
	pgDir, dsn string
	nats       []*natsNode
	natsURLs   string // every node, comma-separated
	certFile   string
	keyFile    string
	keysDir    string // the keys every replica shares
	masterKey  string
	adminToken string
	hubs       []*hub
	up         *testupstream.Registry
	nsPID      int // holds the agent namespace
	agents     []*e2eproc.Agent
	cli        *e2eproc.CLI // the hub CLI against hubs[0]
	join       string
	helper     string // docker-credential-pullgate
	bigBlob    string // digest of the 1 GiB layer (HubKilledMidBlob)
	bigSize    int64
	weed       *testweed.Server // the object store of the shared cache
}

type natsNode struct {
	name                   string
	conf                   string
	port, routePort, mPort int
	p                      *e2eproc.Proc
}

type hub struct {
	name, dir, addr string
	metrics         string // host:port of /metrics
	args            []string
	p               *e2eproc.Proc
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Getenv("PULLGATE_HA_NETNS") != "1" || os.Geteuid() != 0 {
		t.Skip("run with make e2e-ha: the suite needs root and a network namespace of its own (netns.sh)")
	}
	e := &env{t: t}
	e.agentNamespace()
	dir := t.TempDir()
	e.certFile, e.keyFile, _ = testtls.SelfSignedFor(t, dir, net.ParseIP(hostIP), net.ParseIP("127.0.0.1"))
	e.sharedKeys()
	e.startNATS()
	e.startPostgres()
	e.up = testupstream.StartDistribution(t) // htpasswd auth
	e.startHubs(e.startObjectStore())
	e.setup()
	// Agent 1 in the suite's namespace, agent 2 in its own.
	e.agents = append(e.agents,
		e2eproc.StartAgent(t, e.natsURLs, e.join, "node-1", "--nats-ca", e.certFile, "--external-mirror-host", "registry.corp"),
		e2eproc.StartAgentIn(t, []string{"nsenter", "-t", strconv.Itoa(e.nsPID), "-n", "--"}, agentIP, e.natsURLs, e.join, "node-2",
			"--nats-ca", e.certFile, "--external-mirror-host", "registry.corp"))
	return e
}

// agentNamespace makes the agent's network namespace (held by a sleeping
// process) and the veth pair to it.
func (e *env) agentNamespace() {
	t := e.t
	holder := e2eproc.Start(t, "agent-netns", t.TempDir(), nil, "unshare", "--net", "sleep", "3600")
	e.nsPID = holder.Cmd.Process.Pid
	own, _ := os.Readlink("/proc/self/ns/net")
	deadline := time.Now().Add(5 * time.Second)
	for {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", e.nsPID))
		if ns != "" && ns != own {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare --net made no namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pid := strconv.Itoa(e.nsPID)
	mustRun(t, "ip", "link", "add", "pgha0", "type", "veth", "peer", "name", "pgha1", "netns", pid)
	mustRun(t, "ip", "addr", "add", hostIP+"/30", "dev", "pgha0")
	mustRun(t, "ip", "link", "set", "pgha0", "up")
	in := func(args ...string) { mustRun(t, "nsenter", append([]string{"-t", pid, "-n", "--"}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "addr", "add", agentIP+"/30", "dev", "pgha1")
	in("ip", "link", "set", "pgha1", "up")
}

// partitionAgent rejects (with a TCP reset) the agent namespace's traffic
// to every NATS node, or lets it through again.
func (e *env) partitionAgent(on bool) {
	ports := make([]string, len(e.nats))
	for i, n := range e.nats {
		ports[i] = strconv.Itoa(n.port)
	}
	op := "-A"
	if !on {
		op = "-D"
	}
	mustRun(e.t, "nsenter", "-t", strconv.Itoa(e.nsPID), "-n", "--", "iptables", op, "OUTPUT", "-d", hostIP, "-p", "tcp",
		"-m", "multiport", "--dports", strings.Join(ports, ","), "-j", "REJECT", "--reject-with", "tcp-reset")
}

// sharedKeys makes what every replica must share: the NATS callout keys
// (nats-config creates them), the admin token and the master key.
func (e *env) sharedKeys() {
	t := e.t
	e.keysDir = t.TempDir()
	raw := make([]byte, 32)
	rand.Read(raw)
	e.adminToken = "pga_" + hex.EncodeToString(raw)
	if err := os.WriteFile(filepath.Join(e.keysDir, "admin.token"), []byte(e.adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rand.Read(raw)
	e.masterKey = hex.EncodeToString(raw)
}

func (e *env) startNATS() {
	t := e.t
	block := mustRun(t, e2eproc.HubBinary(t), "nats-config", "--data", e.keysDir, "--tls-cert", e.certFile, "--tls-key", e.keyFile)
	urls := make([]string, 3)
	for i := range 3 {
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), port: testupstream.FreePort(t), routePort: testupstream.FreePort(t),
			mPort: testupstream.FreePort(t)}
		e.nats = append(e.nats, n)
		urls[i] = fmt.Sprintf("tls://%s:%d", hostIP, n.port)
	}
	e.natsURLs = strings.Join(urls, ",")
	bin := e2eproc.NATSServerBinary(t)
	for _, n := range e.nats {
		var routes []string
		for _, o := range e.nats {
			if o != n {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.routePort))
			}
		}
		dir := t.TempDir()
		n.conf = filepath.Join(dir, "nats.conf")
		conf := fmt.Sprintf("server_name: %s\nlisten: \"%s:%d\"\nhttp: \"127.0.0.1:%d\"\n"+
			"cluster {\n  name: pullgate-ha\n  listen: \"127.0.0.1:%d\"\n  routes: [ %s ]\n}\n%s",
			n.name, hostIP, n.port, n.mPort, n.routePort, strings.Join(routes, ", "), block)
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n.start(t, bin)
	}
	for _, n := range e.nats {
		n.waitRoutes(t, 2)
	}
}

func (n *natsNode) start(t *testing.T, bin string) {
	t.Helper()
	n.p = e2eproc.Start(t, "nats "+n.name, filepath.Dir(n.conf), nil, bin, "-c", n.conf)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(n.p.Log.String(), "Server is ready") {
		if time.Now().After(deadline) || !n.p.Alive() {
			t.Fatalf("nats %s not ready:\n%s", n.name, n.p.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// monitor decodes the node's monitoring endpoint path.
func (n *natsNode) monitor(path string, v any) error {
	// Bounded: a paused node accepts the connection and answers nothing.
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.mPort, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitRoutes waits until the node has want routes.
func (n *natsNode) waitRoutes(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var rz struct {
			NumRoutes int `json:"num_routes"`
		}
		if err := n.monitor("/routez", &rz); err == nil && rz.NumRoutes >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats %s: fewer than %d routes after 20s", n.name, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hubConnections counts the hubs' connections over every node.
func (e *env) hubConnections() int {
	n := 0
	for _, node := range e.nats {
		n += node.count("pullgate-hub")
	}
	return n
}

// count is the number of the node's connections authorised as user.
func (n *natsNode) count(user string) int {
	var cz struct {
		Conns []struct {
			User string `json:"authorized_user"`
		} `json:"connections"`
	}
	if n.p == nil || !n.p.Alive() || n.monitor("/connz?auth=true&limit=1024", &cz) != nil {
		return 0
	}
	c := 0
	for _, cn := range cz.Conns {
		if cn.User == user {
			c++
		}
	}
	return c
}

// holds reports whether the node has a client connection authorised as
// user (a node id).
func (n *natsNode) holds(user string) bool { return n.count(user) > 0 }

func (e *env) startPostgres() {
	t := e.t
	// Not under t.TempDir: the postgres user must reach the socket.
	dir, err := os.MkdirTemp("", "pullgate-ha-pg")
	if err != nil {
		t.Fatal(err)
	}
	e.pgDir = dir
	t.Cleanup(func() { e.postgres("stop"); os.RemoveAll(dir) })
	e.dsn = strings.TrimSpace(e.postgres("start"))
}

// postgres runs .ci/postgres.sh start|stop on the suite's cluster.
func (e *env) postgres(cmd string) string {
	e.t.Helper()
	return mustRun(e.t, filepath.Join(testupstream.RepoRoot(e.t), ".ci", "postgres.sh"), cmd, e.pgDir)
}

// startHubs starts three replicas, each with a data dir of its own
// holding copies of the shared keys.
func (e *env) startHubs(cacheArgs []string) {
	t := e.t
	bin := e2eproc.HubBinary(t)
	for i := range 3 {
		h := &hub{name: fmt.Sprintf("hub-%c", 'a'+i), dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)),
			metrics: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))}
		data := filepath.Join(h.dir, "data")
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"admin.token", "nats-issuer.nk", "nats-hub.password"} {
			b, err := os.ReadFile(filepath.Join(e.keysDir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		h.args = append([]string{"serve", "--data", data, "--listen", h.addr, "--metrics-listen", h.metrics,
			"--database", e.dsn, "--nats-url", e.natsURLs, "--nats-ca", e.certFile}, cacheArgs...)
		e.hubs = append(e.hubs, h)
	}
	// All three start at the same moment on the fresh database: the
	// migrations and the first signing key are made once, under the lock.
	for _, h := range e.hubs {
		e.startHub(h, false)
	}
	for _, h := range e.hubs {
		e2eproc.WaitHTTP(t, "http://"+h.addr+"/readyz", h.p)
	}
	e.cli = &e2eproc.CLI{T: t, Bin: bin, Dir: t.TempDir(), Env: []string{"PULLGATE_HUB=http://" + e.hubs[0].addr, "PULLGATE_TOKEN=" + e.adminToken}}
}

// startHub (re)starts a replica, waiting for it when wait is set.
func (e *env) startHub(h *hub, wait bool) {
	h.p = e2eproc.Start(e.t, h.name, h.dir, []string{"PULLGATE_MASTER_KEY=" + e.masterKey}, e2eproc.HubBinary(e.t), h.args...)
	if wait {
		e2eproc.WaitHTTP(e.t, "http://"+h.addr+"/readyz", h.p)
	}
}

// setup: workspace acme with a credential for registry.corp (the
// distribution registry), cluster edge, installs web (edge's) and gap
// (tokens minted by the API).
func (e *env) setup() {
	c := e.cli
	c.Must("", "workspace", "create", "acme")
	c.Must(e.up.Password+"\n", "registry", "add", "-w", "acme", "--name", "corp", "--host", "registry.corp",
		"--endpoint", e.up.URL, "--allow-private-network", "--username", e.up.User, "--password-stdin")
	e.join = strings.TrimSpace(c.Must("", "cluster", "create", "edge", "--workspace", "acme"))
	c.Must("", "install", "create", "-w", "acme", "--name", "web", "--cluster", "edge", "--repo", "registry.corp/org/*")
	c.Must("", "install", "create", "-w", "acme", "--name", "gap", "--repo", "registry.corp/org/*")
}

// api calls the admin API of h.
func (e *env) api(h *hub, method, path string) (int, string) {
	req, _ := http.NewRequest(method, "http://"+h.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mintToken mints an install token through h's API.
func (e *env) mintToken(h *hub, install string) string {
	e.t.Helper()
	code, body := e.api(h, http.MethodPost, "/api/v1/workspaces/acme/installs/"+install+"/tokens")
	var tok struct {
		Token string `json:"token"`
	}
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		e.t.Fatalf("mint token at %s: %d %s", h.name, code, body)
	}
	return tok.Token
}

// agentToken asks the agent for registry.corp's credentials the way
// standalone tools do (docker-credential-pullgate get); "" when it has
// none.
func (e *env) agentToken(a *e2eproc.Agent) string {
	e.t.Helper()
	if e.helper == "" {
		e.helper = filepath.Join(e.t.TempDir(), "docker-credential-pullgate")
		if err := os.Symlink(e2eproc.HelperBinary(e.t), e.helper); err != nil {
			e.t.Fatal(err)
		}
	}
	cmd := exec.Command(e.helper, "get")
	cmd.Env = append(os.Environ(), "PULLGATE_SOCKET="+a.Socket)
	cmd.Stdin = strings.NewReader("registry.corp")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	var c struct{ Secret string }
	if json.Unmarshal(out, &c) != nil {
		e.t.Fatalf("docker-credential-pullgate get: %s", out)
	}
	return c.Secret
}

// pull GETs repo's manifest ref through h in the mirror form containerd
// uses; it returns the status and body.
func pull(h *hub, repo, ref, tok string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/manifests/%s?ns=registry.corp", h.addr, repo, ref), nil)
	req.SetBasicAuth(wire.Username, tok)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// blobRequest is a GET of repo's blob digest through h in the mirror form
// containerd uses, from byte rng on ("" for all of it).
func blobRequest(h *hub, repo, digest, tok, rng string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/blobs/%s?ns=registry.corp", h.addr, repo, digest), nil)
	req.SetBasicAuth(wire.Username, tok)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	return req
}

// waitFor polls cond every 20 ms for up to d and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// nodeID is the agent's enrolled node identity.
func nodeID(t *testing.T, a *e2eproc.Agent) string {
	var id struct {
		NodeID string `json:"node_id"`
	}
	b, err := os.ReadFile(filepath.Join(a.StateDir, "identity.json"))
	if err != nil || json.Unmarshal(b, &id) != nil || id.NodeID == "" {
		t.Fatalf("agent identity: %v %s", err, b)
	}
	return id.NodeID
}

// noSecretsIn fails when any process log holds the upstream password or
// one of the tokens.
func (e *env) noSecretsIn(tokens ...string) {
	e.t.Helper()
	var logs []*e2eproc.Proc
	for _, h := range e.hubs {
		logs = append(logs, h.p)
	}
	for _, a := range e.agents {
		logs = append(logs, a.Proc)
	}
	for _, p := range logs {
		out := p.Log.String()
		if strings.Contains(out, e.up.Password) {
			e.t.Fatalf("%s's log holds the upstream password", p.Name)
		}
		for _, tok := range tokens {
			if tok != "" && strings.Contains(out, tok) {
				e.t.Fatalf("%s's log holds an install token", p.Name)
			}
		}
	}
	if bytes.Contains([]byte(e.cli.Seen.String()), []byte(e.up.Password)) {
		e.t.Fatal("the CLI printed the upstream password")
	}
}
