package revsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/proxy"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/hub/tokensvc"
	"github.com/pullgate/pullgate/internal/testpg"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// EnvPostgres names the PostgreSQL database the simulation runs on (as in
// the store's tests); without it, the replicas share one SQLite file, each
// with its own handle as separate processes would have.
const EnvPostgres = "PULLGATE_TEST_POSTGRES_DSN"

const (
	// hubHost is the hub as path-prefix images name it.
	hubHost = "hub.revsim.test"
	// upstreamHost is the registry credentials are for (its API answers
	// at the in-process upstream's endpoint).
	upstreamHost = "registry.revsim.test"
	adminToken   = "pga_revsim-admin-token"
)

// env is what every schedule shares: the store, the NATS cluster, the
// upstream, the replicas. Schedules create their own workspaces, clusters
// and agents in it.
type env struct {
	t      testing.TB
	open   func(ctx context.Context) (*store.SQL, error)
	admin  *store.SQL // the test's own handle: setup and reading state
	sealer *secrets.Sealer
	key    token.Key
	creds  natsauth.Credentials
	nats   []*natsserver.Server
	up     *testupstream.Registry
	reps   []*replica
	log    *slog.Logger
}

func newEnv(t testing.TB, replicas int) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, log: slog.New(slog.DiscardHandler)}
	if os.Getenv("REVSIM_LOG") != "" {
		e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.open = storeOpener(t)
	var err error
	if e.admin, err = e.open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Close() })
	e.sealer, _ = secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	if e.key, err = token.NewKey(); err != nil {
		t.Fatal(err)
	}
	if e.creds, err = natsauth.LoadOrCreate(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	e.nats = startNATSCluster(t, e.creds, 3)
	e.up = testupstream.StartInProcess(t, testupstream.WithBasicAuth("puller", "upstream-secret"))
	for i := range replicas {
		r := &replica{e: e, id: i}
		if err := r.start(); err != nil {
			t.Fatalf("start replica %d: %v", i, err)
		}
		e.reps = append(e.reps, r)
	}
	t.Cleanup(func() {
		for _, r := range e.reps {
			r.kill()
		}
	})
	return e
}

// storeOpener opens handles on one fresh database: a schema of its own in
// the PostgreSQL database when EnvPostgres is set, else a SQLite file.
func storeOpener(t testing.TB) func(context.Context) (*store.SQL, error) {
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		path := filepath.Join(t.TempDir(), "hub.db")
		return func(ctx context.Context) (*store.SQL, error) { return store.OpenSQLite(ctx, path) }
	}
	scoped := testpg.Schema(t, dsn, fmt.Sprintf("revsim_%d", time.Now().UnixNano()))
	return func(ctx context.Context) (*store.SQL, error) { return store.OpenPostgres(ctx, scoped) }
}

// startNATSCluster runs n NATS servers routed to each other, each with
// the hub's auth callout, as `pullgate-hub nats-config` sets up an external
// cluster. Servers do not advertise each other's client URLs, so an
// agent's connections go only through its relays.
func startNATSCluster(t testing.TB, creds natsauth.Credentials, n int) []*natsserver.Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testupstream.FreePort(t)
	}
	var out []*natsserver.Server
	for i := range n {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		o := &natsserver.Options{
			ServerName: fmt.Sprintf("revsim-%d", i), Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
			Cluster: natsserver.ClusterOpts{Name: "revsim", Host: "127.0.0.1", Port: ports[i], NoAdvertise: true},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")),
		}
		creds.Configure(o)
		ns, err := natsserver.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() {
			// Bounded: a server whose route is stuck never finishes its
			// shutdown, and the test should report its failure, not hang.
			done := make(chan struct{})
			go func() { ns.Shutdown(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("NATS server %s did not shut down within 10s (a route or client stuck)", ns.Name())
			}
		})
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("NATS server %d not ready", i)
		}
		out = append(out, ns)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, ns := range out {
		for ns.NumRoutes() < n-1 {
			if time.Now().After(deadline) {
				t.Fatalf("NATS cluster did not form: %s has %d routes", ns.Name(), ns.NumRoutes())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

// natsURLs lists the client URLs of the cluster, starting at server first.
func natsURLs(servers []*natsserver.Server, first int) string {
	var urls []string
	for i := range servers {
		urls = append(urls, servers[(first+i)%len(servers)].ClientURL())
	}
	return strings.Join(urls, ",")
}

// replica is one hub process's components: its own store handle, NATS
// connection (auth callout and token service in the queue group), proxy
// and API, wired as hub/server wires them for an external NATS.
type replica struct {
	e  *env
	id int

	mu    sync.Mutex
	up    bool
	st    *store.SQL
	nc    *nats.Conn
	svc   *tokensvc.Service
	proxy http.Handler
	api   http.Handler
}

func (r *replica) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := r.e.open(ctx)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURLs(r.e.nats, r.id), nats.Name(fmt.Sprintf("pullgate-hub-%d", r.id)),
		nats.UserInfo(natsauth.HubUser, r.e.creds.Password), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		st.Close()
		return err
	}
	if _, err := natsauth.New(st, r.e.creds.Issuer, natsauth.WithLogger(r.e.log)).Subscribe(nc); err != nil {
		nc.Close()
		st.Close()
		return err
	}
	keys := token.NewKeyring()
	keys.Add(r.e.key, true)
	svc := tokensvc.New(st, keys, tokensvc.WithHubHosts(hubHost), tokensvc.WithLogger(r.e.log))
	if err := svc.Start(nc); err != nil {
		nc.Close()
		st.Close()
		return err
	}
	p := proxy.New(st, r.e.sealer, keys, noAudit{}, proxy.WithLogger(r.e.log))
	a := api.New(api.Deps{Store: st, Sealer: r.e.sealer, Keyring: keys, AdminToken: adminToken, Revoker: svc, Logger: r.e.log})
	r.mu.Lock()
	r.up, r.st, r.nc, r.svc, r.proxy, r.api = true, st, nc, svc, p.Handler(), a
	r.mu.Unlock()
	return nil
}

// kill stops the replica as a crash would: its NATS connection and store
// handle close without draining.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return
	}
	r.up = false
	r.nc.Close()
	r.st.Close()
}

func (r *replica) isUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// do sends req to the replica's proxy or API handler.
func (r *replica) do(req *http.Request) *http.Response {
	r.mu.Lock()
	h := r.proxy
	if strings.HasPrefix(req.URL.Path, api.Prefix) {
		h = r.api
	}
	r.mu.Unlock()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

type noAudit struct{}

func (noAudit) Record(store.AuditEvent) {}

// credentialFor stores the workspace's credential for the upstream.
func (e *env) credentialFor(ctx context.Context, ws store.Workspace) error {
	c := store.Credential{WorkspaceID: ws.ID, Name: "upstream", Host: upstreamHost, Endpoint: e.up.URL,
		Kind: credential.KindBasic, Username: e.up.User, Enabled: true, AllowPrivateNetwork: true}
	sealed, err := credential.Seal(e.sealer, c, credential.Secret{Password: e.up.Password})
	if err != nil {
		return err
	}
	_, err = e.admin.CreateCredential(ctx, ws.Name, c, sealed)
	return err
}

// gate is a TCP relay between one agent and one NATS server that the test
// can cut (every connection closed, new ones refused) and restore: a
// network partition of that agent.
type gate struct {
	ln      net.Listener
	backend string

	mu    sync.Mutex
	open  bool
	conns map[net.Conn]struct{}
}

func newGate(t testing.TB, backend string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, backend: backend, open: true, conns: map[net.Conn]struct{}{}}
	go g.serve()
	t.Cleanup(func() { ln.Close(); g.cut() })
	return g
}

func (g *gate) url() string { return "nats://" + g.ln.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.relay(c)
	}
}

func (g *gate) relay(c net.Conn) {
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		c.Close()
		return
	}
	g.mu.Unlock()
	b, err := net.DialTimeout("tcp", g.backend, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	g.conns[c], g.conns[b] = struct{}{}, struct{}{}
	g.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, b)
	g.mu.Unlock()
}

func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

func (g *gate) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
}

func envPostgres() string { return os.Getenv(EnvPostgres) }
