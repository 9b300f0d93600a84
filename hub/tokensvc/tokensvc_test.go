package tokensvc

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/pkg/wire"
)

type env struct {
	t     *testing.T
	url   string
	store *store.SQL
	keys  *token.Keyring
	svc   *Service
	hub   *nats.Conn
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds, _ := natsauth.LoadOrCreate(dir)
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	creds.Configure(opts)
	ns, _ := natsserver.NewServer(opts)
	ns.Start()
	t.Cleanup(ns.Shutdown)
	ns.ReadyForConnections(5 * time.Second)
	hub, err := nats.Connect(ns.ClientURL(), nats.UserInfo(natsauth.HubUser, creds.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	natsauth.New(st, creds.Issuer).Subscribe(hub)
	keys := token.NewKeyring()
	k, _ := token.NewKey()
	keys.Add(k, true)
	svc := New(st, keys, WithHubHosts("hub.example.com"))
	if err := svc.Start(hub); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: ns.ClientURL(), store: st, keys: keys, svc: svc, hub: hub}
}

func (e *env) workspace(name string, hosts ...string) store.Workspace {
	ws, err := e.store.CreateWorkspace(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, h := range hosts {
		c := store.Credential{WorkspaceID: ws.ID, Name: "reg" + string(rune('a'+i)), Host: h, Kind: "basic", Username: "u", Enabled: true}
		sealed := store.Sealed("x") // the token service never opens secrets
		if _, err := e.store.CreateCredential(context.Background(), name, c, sealed); err != nil {
			e.t.Fatal(err)
		}
	}
	return ws
}

func (e *env) install(ws, name, cluster, ns, sa string, repos ...string) store.Install {
	in, err := e.store.CreateInstall(context.Background(), ws, store.Install{Name: name, Cluster: cluster, Namespace: ns, ServiceAccount: sa, Repos: repos, Enabled: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// cluster returns the named cluster, creating it (with jwks as its
// approved keys, when given) if it does not exist yet.
func (e *env) cluster(name, workspaceID string, jwks []byte) store.Cluster {
	e.t.Helper()
	if c, err := e.store.GetCluster(context.Background(), name); err == nil {
		return c
	}
	c, err := e.store.CreateCluster(context.Background(), store.Cluster{Name: name, WorkspaceID: workspaceID, SAJWKS: jwks}, []byte("x"))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// enrol does what an agent does with a join token, and returns a node
// connection. The cluster is created (as by cluster) if needed.
func (e *env) enrol(clusterName string, workspaceID string, jwks []byte) (*nats.Conn, wire.EnrolReply) {
	e.t.Helper()
	c := e.cluster(clusterName, workspaceID, jwks)
	join, hash := natsauth.NewJoinToken(c.ID)
	e.store.RotateJoinToken(context.Background(), clusterName, hash)
	enrolID := strings.Repeat("0f", 16)
	nc, err := nats.Connect(e.url, nats.UserInfo(wire.EnrolUser(enrolID), join), nats.CustomInboxPrefix(wire.EnrolInboxPrefix(enrolID)))
	if err != nil {
		e.t.Fatal(err)
	}
	var rep wire.EnrolReply
	e.request(nc, wire.EnrolSubject(c.ID), wire.EnrolRequest{NodeName: "Worker-1"}, &rep)
	nc.Close()
	if rep.Error != "" || rep.NodeID == "" || rep.ClusterID != c.ID {
		e.t.Fatalf("enrol: %+v", rep)
	}
	node, err := nats.Connect(e.url, nats.UserInfo(rep.NodeID, rep.NodeSecret), nats.CustomInboxPrefix(wire.InboxPrefix(rep.NodeID)))
	if err != nil {
		e.t.Fatalf("connect as enrolled node: %v", err)
	}
	e.t.Cleanup(node.Close)
	return node, rep
}

func (e *env) request(nc *nats.Conn, subj string, req, rep any) {
	e.t.Helper()
	b, _ := json.Marshal(req)
	m, err := nc.Request(subj, b, 5*time.Second)
	if err != nil {
		e.t.Fatalf("request %s: %v", subj, err)
	}
	if err := json.Unmarshal(m.Data, rep); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) token(nc *nats.Conn, node wire.EnrolReply, req wire.TokenRequest) wire.TokenReply {
	var rep wire.TokenReply
	e.request(nc, wire.TokenSubject(node.ClusterID, node.NodeID), req, &rep)
	return rep
}

func TestSingleWorkspaceCluster(t *testing.T) {
	e := newEnv(t)
	ws := e.workspace("acme", "ghcr.io/acme", "docker.io")
	e.cluster("edge", ws.ID, nil)
	web := e.install("acme", "web", "edge", "default", "", "ghcr.io/acme/web*")
	e.install("acme", "jobs", "edge", "jobs", "", "ghcr.io/acme/jobs", "docker.io/library/*")
	nc, node := e.enrol("edge", ws.ID, nil)
	if node.Shared {
		t.Fatal("single-workspace cluster reported as shared")
	}
	rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/acme/web-api:1.2"})
	if rep.Error != "" || rep.InstallID != web.ID || rep.Registry != "ghcr.io" || rep.Hub || rep.Epoch == "" {
		t.Fatalf("token: %+v", rep)
	}
	claims, err := e.keys.Verify(rep.Token)
	if err != nil || claims.Install != web.ID || claims.Node != node.NodeID || claims.Cluster != node.ClusterID || claims.Generation != web.Generation {
		t.Fatalf("claims %+v %v", claims, err)
	}
	if !rep.ExpiresAt.After(time.Now().Add(9 * time.Minute)) {
		t.Fatalf("expires %v", rep.ExpiresAt)
	}
	// Path-prefix form through the hub: auth key is the hub's host.
	if rep := e.token(nc, node, wire.TokenRequest{Image: "hub.example.com/docker.io/nginx:1"}); rep.Error != "" || rep.Registry != "hub.example.com" || !rep.Hub || rep.Install != "jobs" {
		t.Fatalf("path-prefix: %+v", rep)
	}
	for _, tc := range []struct{ image, code, msg string }{
		{"ghcr.io/acme/other:1", wire.CodeNotFound, "no enabled install"},
		{"quay.io/acme/web-x:1", wire.CodeNotFound, "no enabled install"},
		{"ghcr.io/Acme/Web:1", wire.CodeInvalid, "image"},
		{"", wire.CodeInvalid, "image"},
	} {
		rep := e.token(nc, node, wire.TokenRequest{Image: tc.image})
		if rep.Code != tc.code || !strings.Contains(rep.Error, tc.msg) || rep.Token != "" {
			t.Fatalf("%q: %+v", tc.image, rep)
		}
	}
	// Two installs allowing the same image: refused, naming both.
	e.install("acme", "web2", "edge", "other", "", "ghcr.io/acme/*")
	if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/acme/web-api:1"}); rep.Code != wire.CodeAmbiguous || !strings.Contains(rep.Error, "web2") {
		t.Fatalf("ambiguous: %+v", rep)
	}
	// Allowed by the install but no credential covers it.
	e.install("acme", "q", "edge", "q", "", "quay.io/x/y")
	if rep := e.token(nc, node, wire.TokenRequest{Image: "quay.io/x/y"}); rep.Code != wire.CodeNotFound || !strings.Contains(rep.Error, "no enabled registry credential") {
		t.Fatalf("uncovered: %+v", rep)
	}
	// Registry-level requests (docker-credential-helper `get HOST`).
	if rep := e.token(nc, node, wire.TokenRequest{Image: "docker.io"}); rep.Install != "jobs" || rep.Registry != "docker.io" || rep.Hub {
		t.Fatalf("registry-level docker.io: %+v", rep)
	}
	if rep := e.token(nc, node, wire.TokenRequest{Image: "quay.io"}); rep.Code != wire.CodeNotFound {
		t.Fatalf("registry-level quay.io: %+v", rep)
	}
	if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io"}); rep.Code != wire.CodeAmbiguous {
		t.Fatalf("registry-level ghcr.io with two installs on it: %+v", rep)
	}
	// Malformed request.
	m, _ := nc.Request(wire.TokenSubject(node.ClusterID, node.NodeID), []byte(`{"image":"x","extra":1}`), 5*time.Second)
	if !strings.Contains(string(m.Data), "unknown field") {
		t.Fatalf("unknown field: %s", m.Data)
	}
}

func TestSharedClusterSelectsByServiceAccount(t *testing.T) {
	e := newEnv(t)
	iss := testsa.New(t)
	a := e.workspace("tenant-a", "ghcr.io")
	b := e.workspace("tenant-b", "ghcr.io")
	e.cluster("akash", "", iss.JWKS())
	ia := e.install("tenant-a", "app", "akash", "ns-a", "")
	ib := e.install("tenant-b", "app", "akash", "ns-b", "")
	_, _ = a, b
	nc, node := e.enrol("akash", "", iss.JWKS())
	if !node.Shared {
		t.Fatal("shared cluster not reported as shared")
	}
	img := "ghcr.io/org/app:1"
	if rep := e.token(nc, node, wire.TokenRequest{Image: img, ServiceAccountToken: iss.Token(t, "ns-a", "default", testsa.Opts{})}); rep.InstallID != ia.ID {
		t.Fatalf("ns-a: %+v", rep)
	}
	if rep := e.token(nc, node, wire.TokenRequest{Image: img, ServiceAccountToken: iss.Token(t, "ns-b", "default", testsa.Opts{})}); rep.InstallID != ib.ID {
		t.Fatalf("ns-b: %+v", rep)
	}
	other := testsa.New(t)
	for name, req := range map[string]wire.TokenRequest{
		"no token":          {Image: img},
		"forged":            {Image: img, ServiceAccountToken: other.Token(t, "ns-a", "default", testsa.Opts{})},
		"expired":           {Image: img, ServiceAccountToken: iss.Token(t, "ns-a", "default", testsa.Opts{TTL: -time.Hour})},
		"wrong audience":    {Image: img, ServiceAccountToken: iss.Token(t, "ns-a", "default", testsa.Opts{Audience: "vault"})},
		"tampered":          {Image: img, ServiceAccountToken: tamper(iss.Token(t, "ns-a", "default", testsa.Opts{}))},
		"unknown namespace": {Image: img, ServiceAccountToken: iss.Token(t, "ns-c", "default", testsa.Opts{})},
	} {
		rep := e.token(nc, node, req)
		if rep.Token != "" || rep.Error == "" {
			t.Fatalf("%s: got a token: %+v", name, rep)
		}
		if strings.Contains(rep.Error, req.ServiceAccountToken) && req.ServiceAccountToken != "" {
			t.Fatalf("%s: error echoes the token", name)
		}
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	b[10] ^= 1
	return parts[0] + "." + string(b) + "." + parts[2]
}

func TestSyncAndRevocations(t *testing.T) {
	e := newEnv(t)
	ws := e.workspace("acme", "ghcr.io")
	e.cluster("edge", ws.ID, nil)
	web := e.install("acme", "web", "edge", "default", "")
	jobs := e.install("acme", "jobs", "edge", "jobs", "", "ghcr.io/acme/jobs")
	nc, node := e.enrol("edge", ws.ID, nil)
	rev, err := nc.SubscribeSync(wire.RevokeSubject(node.ClusterID))
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	var sync wire.SyncReply
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{AgentVersion: "v9.8.7"}, &sync)
	if len(sync.Installs) != 2 || sync.Installs[web.ID].Generation != web.Generation || sync.Source == "" {
		t.Fatalf("sync: %+v", sync)
	}

	ctx := context.Background()
	// The resync records the agent's version and the contact.
	if n, _, err := e.store.NodeByID(ctx, node.NodeID); err != nil || n.AgentVersion != "v9.8.7" || time.Since(n.LastSeenAt) > time.Minute {
		t.Fatalf("node after sync: version %q last seen %v (%v)", n.AgentVersion, n.LastSeenAt, err)
	}
	off := false
	web, _ = e.store.UpdateInstall(ctx, "acme", "web", store.InstallUpdate{Enabled: &off})
	if err := e.svc.InstallChanged(ctx, web); err != nil {
		t.Fatal(err)
	}
	m, err := rev.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal("no revocation pushed")
	}
	var r wire.Revocation
	json.Unmarshal(m.Data, &r)
	if len(r.Installs) != 1 || r.Installs[0] != web.ID || r.Seq != sync.Seq+1 || r.Source != sync.Source {
		t.Fatalf("revocation %+v after sync seq %d", r, sync.Seq)
	}
	// A notice (new or re-enabled install) names nothing to drop.
	if err := e.svc.InstallAdded(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	m, err = rev.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal("no notice pushed")
	}
	var notice wire.Revocation
	json.Unmarshal(m.Data, &notice)
	if len(notice.Installs)+len(notice.Workspaces)+len(notice.Nodes) != 0 || notice.Cluster || notice.Seq != r.Seq+1 {
		t.Fatalf("notice %+v", notice)
	}
	r = notice
	sync = wire.SyncReply{}
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{}, &sync)
	if _, ok := sync.Installs[web.ID]; ok || len(sync.Installs) != 1 || sync.Seq != r.Seq {
		t.Fatalf("sync after disable: %+v", sync)
	}
	epoch := sync.Installs[jobs.ID].Epoch
	if _, err := e.store.UpdateCredential(ctx, "acme", "rega", store.CredentialUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	e.svc.CredentialsChanged(ctx, ws.ID)
	m, _ = rev.NextMsg(2 * time.Second)
	json.Unmarshal(m.Data, &r)
	if len(r.Workspaces) != 1 || r.Workspaces[0] != ws.ID {
		t.Fatalf("credential revocation %+v", r)
	}
	sync = wire.SyncReply{}
	e.request(nc, wire.SyncSubject(node.ClusterID, node.NodeID), wire.SyncRequest{}, &sync)
	if sync.Installs[jobs.ID].Epoch == epoch {
		t.Fatal("epoch unchanged after a credential was disabled")
	}

	// A revoked node gets nothing more from the token service, even on a
	// connection that is still open.
	c, _ := e.store.GetCluster(ctx, "edge")
	n, _ := e.store.RevokeNode(ctx, "edge", node.NodeID)
	e.svc.NodeRevoked(ctx, c, n)
	if rep := e.token(nc, node, wire.TokenRequest{Image: "ghcr.io/acme/jobs"}); rep.Code != wire.CodeForbidden {
		t.Fatalf("revoked node got: %+v", rep)
	}
}

// The sync reply lists the upstream hosts the cluster's live installs can
// pull from (agents write containerd mirrors for them): enabled
// credentials of the install's workspace whose host its allow-list reaches.
func TestSyncHosts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acme := e.workspace("acme", "registry-a.corp", "registry-b.corp", "ghcr.io/acme")
	other := e.workspace("other", "quay.io")
	nc, node := e.enrol("edge", acme.ID, nil)
	sync := func() []string {
		t.Helper()
		b, _ := json.Marshal(wire.SyncRequest{})
		m, err := nc.Request(wire.SyncSubject(node.ClusterID, node.NodeID), b, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(m.Data), `"hosts":[`) {
			t.Fatalf("sync reply without a hosts list: %s", m.Data)
		}
		var rep wire.SyncReply
		json.Unmarshal(m.Data, &rep)
		if rep.Error != "" {
			t.Fatalf("sync: %+v", rep)
		}
		return rep.Hosts
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("hosts %v, want %v", got, want)
		}
	}
	want(sync()) // no installs: an empty list, not null
	e.install("acme", "a", "edge", "default", "", "registry-a.corp/org/*")
	want(sync(), "registry-a.corp")
	e.install("acme", "b", "edge", "jobs", "", "registry-b.corp/**", "registry-a.corp/org/app")
	want(sync(), "registry-a.corp", "registry-b.corp")
	// An allow-list naming a host the workspace has no credential for adds nothing.
	e.install("acme", "c", "edge", "c", "", "docker.io/library/*")
	want(sync(), "registry-a.corp", "registry-b.corp")
	// Another workspace's credentials and installs of other clusters do not count.
	e.cluster("elsewhere", "", nil)
	e.install("other", "q", "elsewhere", "q", "")
	want(sync(), "registry-a.corp", "registry-b.corp")
	_ = other

	// Disabled installs and credentials keep their hosts (a pause must not
	// send the node's pulls to the upstream itself); deletion removes them.
	off := false
	if _, err := e.store.UpdateCredential(ctx, "acme", "regb", store.CredentialUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateInstall(ctx, "acme", "a", store.InstallUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	want(sync(), "registry-a.corp", "registry-b.corp")
	if err := e.store.DeleteCredential(ctx, "acme", "regb"); err != nil {
		t.Fatal(err)
	}
	want(sync(), "registry-a.corp")
	if err := e.store.DeleteInstall(ctx, "acme", "b"); err != nil {
		t.Fatal(err)
	}
	want(sync(), "registry-a.corp") // the disabled install a still uses it
	if err := e.store.DeleteInstall(ctx, "acme", "a"); err != nil {
		t.Fatal(err)
	}
	want(sync())
	// An empty allow-list reaches every enabled credential's host.
	e.install("acme", "all", "edge", "all", "")
	want(sync(), "ghcr.io", "registry-a.corp")
}
