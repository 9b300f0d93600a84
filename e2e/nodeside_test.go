//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go"
	kubeletconfig "k8s.io/kubelet/config/v1"
	credentialprovider "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/wire"
)

// agent is a running pullgate-agent (e2eproc.Agent, under the names this
// suite's tests use).
type agent struct {
	*proc
	bin      string
	socket   string
	stateDir string
	metrics  string
	a        *e2eproc.Agent
}

// startAgent runs `pullgate-agent run` enrolled with joinToken; extra
// flags are appended.
func startAgent(t *testing.T, natsURL, joinToken string, extra ...string) *agent {
	t.Helper()
	a := e2eproc.StartAgent(t, natsURL, joinToken, "worker-1", extra...)
	return &agent{proc: wrapProc(a.Proc), bin: a.Bin, socket: a.Socket, stateDir: a.StateDir, metrics: a.Metrics, a: a}
}

func (a *agent) metric(t *testing.T, name string) string { return a.a.Metric(t, name) }

// kubelet acts as the kubelet: it reads the CredentialProviderConfig the
// agent prints, matches images as the kubelet does, and execs the helper
// with the request JSON.
type kubelet struct {
	t        *testing.T
	provider kubeletconfig.CredentialProvider
	binDir   string
}

func newKubelet(t *testing.T, a *agent, args ...string) *kubelet {
	t.Helper()
	out, err := exec.Command(a.bin, append([]string{"kubelet-config", "--socket", a.socket}, args...)...).Output()
	if err != nil {
		t.Fatalf("kubelet-config: %v", err)
	}
	var cfg kubeletconfig.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(out, &cfg); err != nil {
		t.Fatalf("kubelet-config output is not a strict CredentialProviderConfig: %v\n%s", err, out)
	}
	if cfg.Kind != "CredentialProviderConfig" || cfg.APIVersion != "kubelet.config.k8s.io/v1" || len(cfg.Providers) != 1 {
		t.Fatalf("kubelet-config: %+v", cfg)
	}
	// The kubelet runs <bin dir>/<provider name>.
	binDir := t.TempDir()
	helper := binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider")
	if err := os.Symlink(helper, filepath.Join(binDir, cfg.Providers[0].Name)); err != nil {
		t.Fatal(err)
	}
	return &kubelet{t: t, provider: cfg.Providers[0], binDir: binDir}
}

// matches applies the kubelet's matchImages rules: each pattern's host
// part is a glob over the image's registry host ("*.gcr.io"), with an
// optional path prefix.
func (k *kubelet) matches(image string) bool {
	for _, p := range k.provider.MatchImages {
		if imageMatches(p, image) {
			return true
		}
	}
	return false
}

// imageMatches is the kubelet's rule for matchImages patterns and for the
// keys of a response's auth map.
func imageMatches(pattern, image string) bool {
	host, pathPrefix, _ := strings.Cut(pattern, "/")
	imgHost, imgPath, _ := strings.Cut(image, "/")
	ok, _ := path.Match(host, imgHost)
	return ok && strings.HasPrefix(imgPath, pathPrefix)
}

// credentials execs the helper for an image, with a service-account token
// when given, and returns the response when it carries credentials, else
// nil and the helper's stderr.
func (k *kubelet) credentials(image, saToken string) (*credentialprovider.CredentialProviderResponse, string, time.Duration) {
	k.t.Helper()
	if !k.matches(image) {
		k.t.Fatalf("image %s matches none of %v: the kubelet would not exec the helper", image, k.provider.MatchImages)
	}
	req := credentialprovider.CredentialProviderRequest{Image: image, ServiceAccountToken: saToken}
	req.APIVersion, req.Kind = "credentialprovider.kubelet.k8s.io/v1", "CredentialProviderRequest"
	body, _ := json.Marshal(req)
	cmd := exec.Command(filepath.Join(k.binDir, k.provider.Name), k.provider.Args...)
	for _, e := range k.provider.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return nil, stderr.String(), took
	}
	var resp credentialprovider.CredentialProviderResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		k.t.Fatalf("helper response: %v\n%s", err, stdout.String())
	}
	if resp.Kind != "CredentialProviderResponse" || resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" {
		k.t.Fatalf("helper response kind %q %q", resp.APIVersion, resp.Kind)
	}
	for _, a := range resp.Auth {
		if a.Password != "" {
			return &resp, "", took
		}
	}
	// A response without credentials: the kubelet pulls anonymously.
	return nil, stderr.String(), took
}

func (k *kubelet) mustToken(image, saToken, key string) string {
	k.t.Helper()
	resp, stderr, _ := k.credentials(image, saToken)
	if resp == nil {
		k.t.Fatalf("helper for %s: %s", image, stderr)
	}
	auth, ok := resp.Auth[key]
	if !ok || auth.Password == "" {
		k.t.Fatalf("helper for %s: no auth for %s in %+v", image, key, resp.Auth)
	}
	if resp.CacheDuration == nil || resp.CacheDuration.Duration <= 0 || resp.CacheDuration.Duration >= 10*time.Minute {
		k.t.Fatalf("cacheDuration %v: want shorter than the token's 10m life", resp.CacheDuration)
	}
	return auth.Password
}

// mirrorGet pulls a manifest the way containerd does through a hosts.toml
// mirror: upstream repository in the path, upstream host in ?ns=.
func mirrorGet(t *testing.T, hubAddr, host, repo, ref, tok string) int {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/manifests/%s?ns=%s", hubAddr, repo, ref, host), nil)
	req.SetBasicAuth(wire.Username, tok)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// setup creates workspace acme with a credential for registry.corp (API
// at up) and returns the cluster's join token.
func setupSingle(t *testing.T, h *hub, up *testupstream.Registry) string {
	c := h.cli
	c.must("", "workspace", "create", "acme")
	c.must(up.Password+"\n", "registry", "add", "-w", "acme", "--name", "corp", "--host", "registry.corp",
		"--endpoint", up.URL, "--allow-private-network", "--username", up.User, "--password-stdin")
	join := strings.TrimSpace(c.must("", "cluster", "create", "edge", "--workspace", "acme"))
	c.must("", "install", "create", "-w", "acme", "--name", "web", "--cluster", "edge", "--repo", "registry.corp/org/*")
	return join
}

func TestNodeSideEmbeddedNATS(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("alice", "nodeside-SECRET"))
	img := up.PushRandomImage(t, "org/app", "v1", 1, 4096)
	want, _ := img.Digest()
	h := startHub(t, t.TempDir(), "")
	join := setupSingle(t, h, up)
	a := startAgent(t, h.nats, join, "--external-mirror-host", "registry.corp") // mirrorGet routes it to the hub
	if fi, err := os.Stat(filepath.Join(a.stateDir, "identity.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	if fi, err := os.Stat(a.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	k := newKubelet(t, a, "--match-image", "registry.corp", "--match-image", h.addr)

	// Mirror form: the image keeps its upstream name.
	tok := k.mustToken("registry.corp/org/app:v1", "", "registry.corp")
	if code := mirrorGet(t, h.addr, "registry.corp", "org/app", "v1", tok); code != http.StatusOK {
		t.Fatalf("mirror pull with the helper's token: %d", code)
	}
	// Path-prefix form: the image names the hub.
	ptok := k.mustToken(h.addr+"/registry.corp/org/app:v1", "", h.addr)
	ref, _ := name.ParseReference(h.addr + "/registry.corp/org/app:v1")
	got, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: wire.Username, Password: ptok}))
	if err != nil {
		t.Fatalf("path-prefix pull: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	// A second request is served from the agent's cache.
	if again := k.mustToken("registry.corp/org/app:v1", "", "registry.corp"); again != tok {
		t.Fatal("warm request did not come from the cache")
	}
	// docker-credential-helper mode, as standalone tools use it.
	dcred := filepath.Join(filepath.Dir(binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider")), "docker-credential-pullgate")
	if _, err := os.Stat(dcred); err != nil {
		dcred = filepath.Join(t.TempDir(), "docker-credential-pullgate")
		os.Symlink(binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider"), dcred)
	}
	dc := exec.Command(dcred, "get")
	dc.Env = append(os.Environ(), "PULLGATE_SOCKET="+a.socket)
	dc.Stdin = strings.NewReader("registry.corp")
	out, err := dc.Output()
	var dcOut struct{ ServerURL, Username, Secret string }
	if err != nil || json.Unmarshal(out, &dcOut) != nil || dcOut.Secret == "" {
		t.Fatalf("docker-credential-pullgate get: %v %s", err, out)
	}
	if code := mirrorGet(t, h.addr, "registry.corp", "org/app", "v1", dcOut.Secret); code != http.StatusOK {
		t.Fatalf("pull with the docker-credential-helper token: %d", code)
	}
	dc = exec.Command(dcred, "get")
	dc.Env = append(os.Environ(), "PULLGATE_SOCKET="+a.socket)
	dc.Stdin = strings.NewReader("quay.io")
	if out, err := dc.CombinedOutput(); err == nil || !strings.Contains(string(out), "credentials not found") {
		t.Fatalf("get for a host without install: %v %s", err, out)
	}

	// Revoke: after `install disable` returns, the agent no longer hands
	// out the token (pushed revocation, then the hub refuses new ones).
	h.cli.must("", "install", "disable", "-w", "acme", "web")
	resp, _, _ := k.credentials("registry.corp/org/app:v1", "")
	if resp != nil {
		t.Fatalf("helper still served a token after install disable: %+v", resp.Auth)
	}
	if n := a.metric(t, "pullgate_agent_revocations_applied_total"); n == "" || n == "0" {
		t.Fatalf("revocations applied: %q", n)
	}
	if code := mirrorGet(t, h.addr, "registry.corp", "org/app", "v1", tok); code != http.StatusUnauthorized {
		t.Fatalf("proxy with revoked token: %d", code)
	}
	h.cli.must("", "install", "enable", "-w", "acme", "web")
	tok2 := k.mustToken("registry.corp/org/app:v1", "", "registry.corp")
	if tok2 == tok || mirrorGet(t, h.addr, "registry.corp", "org/app", "v1", tok2) != http.StatusOK {
		t.Fatal("re-enabled install: no fresh working token")
	}

	// Revoking the node cuts it off: no tokens, not ready, and its token
	// stops working at the proxy.
	var idf struct {
		NodeID string `json:"node_id"`
	}
	b, _ := os.ReadFile(filepath.Join(a.stateDir, "identity.json"))
	json.Unmarshal(b, &idf)
	h.cli.must("", "cluster", "node", "revoke", "edge", idf.NodeID)
	if resp, _, _ := k.credentials("registry.corp/org/app:v1", ""); resp != nil {
		t.Fatal("revoked node still served a token")
	}
	if code := mirrorGet(t, h.addr, "registry.corp", "org/app", "v1", tok2); code != http.StatusUnauthorized {
		t.Fatalf("token of a revoked node at the proxy: %d", code)
	}
	a.stop(t)
	for _, out := range []string{a.log.String(), h.log.String()} {
		if strings.Contains(out, up.Password) || strings.Contains(out, tok2) {
			t.Fatal("a secret or token in agent/hub logs")
		}
	}
}

// The agent is disconnected when an install is revoked; after it
// reconnects it must not hand out the revoked token. The revocation push
// is lost for sure: the NATS server is down while the hub records it.
func TestAgentCatchesUpAfterNATSRestart(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "restart-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	work := t.TempDir()
	ns := startNATSServer(t, work)
	h := startHub(t, work, ns.url())
	join := setupSingle(t, h, up)
	a := startAgent(t, ns.url(), join, "--external-mirror-host", "registry.corp") // mirrorGet routes it to the hub
	k := newKubelet(t, a, "--match-image", "registry.corp")
	tok := k.mustToken("registry.corp/org/app:v1", "", "registry.corp")

	// The external server enforces the callout's permissions too.
	var idf struct {
		NodeID     string `json:"node_id"`
		NodeSecret string `json:"node_secret"`
		ClusterID  string `json:"cluster_id"`
	}
	b, _ := os.ReadFile(filepath.Join(a.stateDir, "identity.json"))
	json.Unmarshal(b, &idf)
	var violations []string
	raw, err := nats.Connect(ns.url(), nats.UserInfo(idf.NodeID, idf.NodeSecret), nats.CustomInboxPrefix(wire.InboxPrefix(idf.NodeID)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations = append(violations, err.Error()) }))
	if err != nil {
		t.Fatalf("raw client with the node's identity: %v", err)
	}
	raw.SubscribeSync(wire.RevokeSubject("cl_other"))
	raw.SubscribeSync("_INBOX_node_other.>")
	raw.Flush()
	time.Sleep(100 * time.Millisecond)
	raw.Close()
	if len(violations) != 2 {
		t.Fatalf("external server let a node subscribe outside its scope: %v", violations)
	}

	ns.kill()
	h.cli.must("", "install", "disable", "-w", "acme", "web")
	// Disconnected: cached tokens are still served (the proxy refuses
	// revoked ones on its own), so pulls keep working in a hub outage.
	if again := k.mustToken("registry.corp/org/app:v1", "", "registry.corp"); again != tok {
		t.Fatal("disconnected agent did not serve its cached token")
	}
	ns.start()
	deadline := time.Now().Add(20 * time.Second)
	for a.metric(t, "pullgate_agent_nats_connected") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("agent did not reconnect within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Right after the reconnect: the revoked token is never served.
	for i := 0; i < 5; i++ {
		if resp, _, _ := k.credentials("registry.corp/org/app:v1", ""); resp != nil {
			t.Fatalf("after reconnect the agent served the revoked token (attempt %d)", i)
		}
	}
	if n := a.metric(t, "pullgate_agent_resyncs_total"); n == "" || n == "0" {
		t.Fatalf("resyncs: %q", n)
	}
}

// On a shared cluster the install is chosen from the pod's verified
// service-account token: namespace A never yields B's install.
func TestSharedClusterTenancy(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "tenancy-SECRET"))
	up.PushRandomImage(t, "tenant-a/app", "v1", 1, 64)
	up.PushRandomImage(t, "tenant-b/app", "v1", 1, 64)
	iss := testsa.New(t)
	h := startHub(t, t.TempDir(), "")
	c := h.cli
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwks, iss.JWKS(), 0o600)
	join := strings.TrimSpace(c.must("", "cluster", "create", "akash", "--sa-jwks", jwks))
	for _, tenant := range []string{"a", "b"} {
		ws := "tenant-" + tenant
		c.must("", "workspace", "create", ws)
		c.must(up.Password+"\n", "registry", "add", "-w", ws, "--name", "corp", "--host", "registry.corp",
			"--endpoint", up.URL, "--allow-private-network", "--username", up.User, "--password-stdin")
		c.must("", "install", "create", "-w", ws, "--name", "app", "--cluster", "akash", "--namespace", "ns-"+tenant,
			"--repo", "registry.corp/"+ws+"/*")
	}
	a := startAgent(t, h.nats, join, "--external-mirror-host", "registry.corp") // mirrorGet routes it to the hub
	k := newKubelet(t, a, "--shared", "--match-image", "registry.corp")
	if k.provider.TokenAttributes == nil || k.provider.TokenAttributes.ServiceAccountTokenAudience != "pullgate" {
		t.Fatalf("shared kubelet config without tokenAttributes: %+v", k.provider)
	}

	saA := iss.Token(t, "ns-a", "default", testsa.Opts{})
	tokA := k.mustToken("registry.corp/tenant-a/app:v1", saA, "registry.corp")
	if code := mirrorGet(t, h.addr, "registry.corp", "tenant-a/app", "v1", tokA); code != http.StatusOK {
		t.Fatalf("tenant a pulls its image: %d", code)
	}
	if code := mirrorGet(t, h.addr, "registry.corp", "tenant-b/app", "v1", tokA); code != http.StatusForbidden {
		t.Fatalf("tenant a's token on tenant b's image: %d", code)
	}
	// A pod in ns-a asking for tenant b's image gets nothing.
	if resp, _, _ := k.credentials("registry.corp/tenant-b/app:v1", saA); resp != nil {
		t.Fatal("namespace a obtained a token for tenant b's image")
	}
	tokB := k.mustToken("registry.corp/tenant-b/app:v1", iss.Token(t, "ns-b", "default", testsa.Opts{}), "registry.corp")
	if code := mirrorGet(t, h.addr, "registry.corp", "tenant-b/app", "v1", tokB); code != http.StatusOK {
		t.Fatalf("tenant b pulls its image: %d", code)
	}
	for name, sa := range map[string]string{
		"no token":       "",
		"forged":         testsa.New(t).Token(t, "ns-a", "default", testsa.Opts{}),
		"expired":        iss.Token(t, "ns-a", "default", testsa.Opts{TTL: -time.Hour}),
		"wrong audience": iss.Token(t, "ns-a", "default", testsa.Opts{Audience: "vault"}),
	} {
		if resp, stderr, _ := k.credentials("registry.corp/tenant-a/app:v1", sa); resp != nil {
			t.Fatalf("%s: got credentials", name)
		} else if sa != "" && strings.Contains(stderr, sa) {
			t.Fatalf("%s: helper printed the service-account token", name)
		}
	}
}
