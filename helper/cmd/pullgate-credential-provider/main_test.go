package main_test

// The helper is tested as the kubelet and docker tools use it: the built
// binary is exec'd with a request on stdin, against a real agent (in this
// process) connected to a real NATS server and the fake hub
// (agent/agenttest/hubfake; to be re-pointed at hub/tokensvc).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/agent/cli"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/pkg/wire"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pullgate-helper-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Built like the Makefile builds it.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "pullgate-credential-provider"), ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build helper:", err)
		os.Exit(1)
	}
	if err := os.Symlink("pullgate-credential-provider", filepath.Join(dir, "docker-credential-pullgate")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	hub    *hubfake.Hub
	cl     hubfake.Cluster
	agent  *agenttest.Running
	tokens []string
}

// newEnv stands for a node whose runtime routes ghcr.io and
// registry.example.com:5000 to the hub.
func newEnv(t testing.TB, shared bool) *env {
	t.Helper()
	return newEnvRouted(t, shared, "ghcr.io", "registry.example.com:5000")
}

func newEnvRouted(t testing.TB, shared bool, routed ...string) *env {
	t.Helper()
	e := &env{hub: hubfake.New(t)}
	e.cl = e.hub.AddCluster("prod", shared)
	if shared {
		e.hub.AddInstall(hubfake.Install{Workspace: "tenant-a", ClusterID: e.cl.ID, Repos: []string{"ghcr.io/shared"}, Namespace: "ns-a"})
		e.hub.AddInstall(hubfake.Install{Workspace: "tenant-b", ClusterID: e.cl.ID, Repos: []string{"ghcr.io/shared"}, Namespace: "ns-b"})
	} else {
		e.hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: e.cl.ID, Repos: []string{"ghcr.io/org"}})
		e.hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: e.cl.ID, Repos: []string{"registry.example.com:5000"}})
	}
	e.agent = agenttest.Start(t, agenttest.Config{NATSURL: e.hub.URL(), Join: jointoken.Static(e.cl.JoinToken),
		Options: []agent.Option{agent.WithExternalMirrors(routed...)}})
	e.agent.WaitReady(t)
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

// execHelper runs the binary (under name) with stdin, as the kubelet does.
func execHelper(t testing.TB, name string, stdin []byte, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func kubeletRequest(t testing.TB, image, saToken string) []byte {
	req := credentialproviderv1.CredentialProviderRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: "credentialprovider.kubelet.k8s.io/v1", Kind: "CredentialProviderRequest"},
		Image:    image, ServiceAccountToken: saToken,
	}
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeResponse reads the helper's stdout strictly with the kubelet's type.
func decodeResponse(t testing.TB, stdout string) credentialproviderv1.CredentialProviderResponse {
	t.Helper()
	var resp credentialproviderv1.CredentialProviderResponse
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("kubelet cannot read the response: %v", err)
	}
	return resp
}

func TestKubeletExec(t *testing.T) {
	e := newEnv(t, false)
	start := time.Now()
	r := execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/org/app:v1", ""), nil, "--socket", e.agent.Socket)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	resp := decodeResponse(t, r.stdout)
	if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" ||
		resp.CacheKeyType != credentialproviderv1.ImagePluginCacheKeyType {
		t.Fatalf("response header %+v", resp.TypeMeta)
	}
	auth, ok := resp.Auth["ghcr.io"]
	if !ok || len(resp.Auth) != 1 || auth.Username != "pullgate" || !e.hub.Valid(auth.Password) {
		t.Fatalf("auth %v", keys(resp.Auth))
	}
	// cacheDuration: positive and ending before the token does.
	ttl := 10 * time.Minute
	if resp.CacheDuration == nil || resp.CacheDuration.Duration <= 0 || start.Add(resp.CacheDuration.Duration).After(start.Add(ttl-30*time.Second)) {
		t.Fatalf("cacheDuration %v for a %s token", resp.CacheDuration, ttl)
	}
	// A registry with a port: the auth key is host:port.
	r = execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "registry.example.com:5000/team/app@sha256:"+strings.Repeat("b", 64), ""), nil, "--socket", e.agent.Socket)
	if resp := decodeResponse(t, r.stdout); r.code != 0 || resp.Auth["registry.example.com:5000"].Password == "" {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	// No install for the image: an empty answer the kubelet does not cache.
	r = execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/elsewhere/app", ""), nil, "--socket", e.agent.Socket)
	resp = decodeResponse(t, r.stdout)
	if r.code != 0 || len(resp.Auth) != 0 || resp.CacheDuration == nil || resp.CacheDuration.Duration != 0 {
		t.Fatalf("not found: exit %d auth %v cache %v: %s", r.code, keys(resp.Auth), resp.CacheDuration, r.stderr)
	}
	e.tokens = append(e.tokens, auth.Password)
	agenttest.NoSecrets(t, e.agent.Logs.String(), e.tokens...)
}

func TestKubeletExecServiceAccounts(t *testing.T) {
	e := newEnv(t, true)
	pw := map[string]string{}
	for _, ns := range []string{"ns-a", "ns-b"} {
		sa := hubfake.SAToken(ns, "default")
		r := execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/shared/app", sa), nil, "--socket", e.agent.Socket)
		if r.code != 0 {
			t.Fatalf("%s: exit %d %s", ns, r.code, r.stderr)
		}
		pw[ns] = decodeResponse(t, r.stdout).Auth["ghcr.io"].Password
		if pw[ns] == "" || pw[ns] == sa {
			t.Fatalf("%s: bad password", ns)
		}
	}
	if pw["ns-a"] == pw["ns-b"] {
		t.Fatal("two tenants got the same install token")
	}
	// Forged service-account token: refused, exit 1, nothing secret on stderr.
	forged := "forged.jwt.value"
	r := execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/shared/app", forged), nil, "--socket", e.agent.Socket)
	if r.code != 1 || !strings.Contains(r.stderr, "service-account token refused") || r.stdout != "" {
		t.Fatalf("forged: exit %d %q", r.code, r.stderr)
	}
	agenttest.NoSecrets(t, r.stderr+e.agent.Logs.String(), forged, pw["ns-a"], pw["ns-b"], hubfake.SAToken("ns-a", "default"))
}

func TestKubeletExecBadInput(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"malformed JSON", `{"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "image": `, nil, 1, "malformed JSON on stdin"},
		{"unknown apiVersion", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderRequest","image":"ghcr.io/org/a"}`, nil, 1, `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1alpha1"`},
		{"wrong kind", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Pod","image":"ghcr.io/org/a"}`, nil, 1, `unsupported kind "Pod"`},
		{"empty stdin", ``, nil, 1, "no request on stdin"},
		{"bad image", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"ghcr.io/Org/A"}`, nil, 1, "invalid request"},
		{"no agent", string(kubeletRequest(t, "ghcr.io/org/a", "")), []string{"--socket", filepath.Join(t.TempDir(), "nope.sock")}, 1, "is pullgate-agent running?"},
		{"bad flag", ``, []string{"--nope"}, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"--socket", e.agent.Socket}
			}
			r := execHelper(t, "pullgate-credential-provider", []byte(tc.stdin), nil, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q; want %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
		})
	}
}

// On a node that does not route ghcr.io to the hub, neither mode hands out
// a token for it (the runtime would send it to ghcr.io itself); the
// path-prefix form through the hub still gets one, keyed by the hub.
func TestNotRoutedNoCredentials(t *testing.T) {
	e := newEnvRouted(t, false)
	r := execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/org/app:v1", ""), nil, "--socket", e.agent.Socket)
	resp := decodeResponse(t, r.stdout)
	if r.code != 0 || len(resp.Auth) != 0 || resp.CacheDuration == nil || resp.CacheDuration.Duration != 0 {
		t.Fatalf("kubelet mode: exit %d auth %v: %s", r.code, keys(resp.Auth), r.stderr)
	}
	r = execHelper(t, "docker-credential-pullgate", []byte("ghcr.io\n"), []string{"PULLGATE_SOCKET=" + e.agent.Socket}, "get")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "credentials not found in native keychain" {
		t.Fatalf("docker-credential mode: exit %d %q", r.code, r.stdout)
	}
	r = execHelper(t, "pullgate-credential-provider", kubeletRequest(t, hubfake.HubHost+"/ghcr.io/org/app:v1", ""), nil, "--socket", e.agent.Socket)
	resp = decodeResponse(t, r.stdout)
	if auth := resp.Auth[hubfake.HubHost]; r.code != 0 || len(resp.Auth) != 1 || !e.hub.Valid(auth.Password) {
		t.Fatalf("path-prefix: exit %d auth %v: %s", r.code, keys(resp.Auth), r.stderr)
	}
	agenttest.NoSecrets(t, e.agent.Logs.String(), resp.Auth[hubfake.HubHost].Password)
}

func TestDockerCredentialHelper(t *testing.T) {
	e := newEnv(t, false)
	env := []string{"PULLGATE_SOCKET=" + e.agent.Socket}
	for _, url := range []string{"ghcr.io", "https://ghcr.io", "https://ghcr.io/v2/"} {
		r := execHelper(t, "docker-credential-pullgate", []byte(url+"\n"), env, "get")
		if r.code != 0 {
			t.Fatalf("get %s: exit %d %s %s", url, r.code, r.stdout, r.stderr)
		}
		var c struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
			t.Fatal(err)
		}
		if c.ServerURL != url || c.Username != "pullgate" || !e.hub.Valid(c.Secret) {
			t.Fatalf("get %s: %+v", url, c.ServerURL)
		}
	}
	// A host this node has no install for: the library's not-found answer.
	r := execHelper(t, "docker-credential-pullgate", []byte("quay.io\n"), env, "get")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "credentials not found in native keychain" {
		t.Fatalf("not found: exit %d %q", r.code, r.stdout)
	}
	for _, action := range []string{"store", "erase", "list"} {
		r := execHelper(t, "docker-credential-pullgate", []byte(`{"ServerURL":"ghcr.io","Username":"u","Secret":"s3cr3t"}`), env, action)
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, action+": pullgate credentials come from the node agent: only get is supported") ||
			strings.Contains(r.stdout+r.stderr, "s3cr3t") {
			t.Fatalf("%s: exit %d %q %q", action, r.code, r.stdout, r.stderr)
		}
	}
	for _, v := range []string{"version", "--version", "-v"} {
		r = execHelper(t, "docker-credential-pullgate", nil, env, v)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "docker-credential-pullgate dev (") {
			t.Fatalf("%s: exit %d %q", v, r.code, r.stdout)
		}
	}
	r = execHelper(t, "pullgate-credential-provider", nil, env, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pullgate-credential-provider dev (") {
		t.Fatalf("--version: exit %d %q", r.code, r.stdout)
	}
	// Agent down.
	r = execHelper(t, "docker-credential-pullgate", []byte("ghcr.io\n"), []string{"PULLGATE_SOCKET=/nonexistent.sock"}, "get")
	if r.code != 1 || !strings.Contains(r.stdout, "is pullgate-agent running?") {
		t.Fatalf("agent down: exit %d %q", r.code, r.stdout)
	}
}

// The kubelet's view end to end: the config printed by `pullgate-agent
// kubelet-config`, parsed with the kubelet's types, and the helper exec'd
// the way that config tells the kubelet to.
func TestKubeletConfigDrivesHelper(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			e := newEnv(t, shared)
			args := []string{"kubelet-config", "--match-image", "ghcr.io", "--socket", e.agent.Socket}
			if shared {
				args = append(args, "--shared")
			}
			var out, errb bytes.Buffer
			if code := cli.Main(context.Background(), args, &out, &errb, func(string) (string, bool) { return "", false }); code != 0 {
				t.Fatalf("kubelet-config: %d %s", code, errb.String())
			}
			// As the kubelet reads its config: strictly, with its own types.
			var cfg kubeletv1.CredentialProviderConfig
			if err := yaml.UnmarshalStrict(out.Bytes(), &cfg); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if len(cfg.Providers) != 1 {
				t.Fatal(cfg)
			}
			p := cfg.Providers[0]
			image, sa := "ghcr.io/org/app", ""
			if shared {
				if p.TokenAttributes == nil || p.TokenAttributes.CacheType != kubeletv1.ServiceAccountServiceAccountTokenCacheType {
					t.Fatal("shared config without tokenAttributes")
				}
				image, sa = "ghcr.io/shared/app", hubfake.SAToken("ns-a", "builder")
			}
			req := credentialproviderv1.CredentialProviderRequest{
				TypeMeta: metav1.TypeMeta{APIVersion: p.APIVersion, Kind: "CredentialProviderRequest"},
				Image:    image, ServiceAccountToken: sa,
			}
			data, _ := json.Marshal(req)
			var env []string
			for _, ev := range p.Env {
				env = append(env, ev.Name+"="+ev.Value)
			}
			r := execHelper(t, p.Name, data, env, p.Args...)
			if r.code != 0 {
				t.Fatalf("exit %d %s", r.code, r.stderr)
			}
			resp := decodeResponse(t, r.stdout)
			if resp.APIVersion != p.APIVersion || resp.Auth["ghcr.io"].Password == "" {
				t.Fatalf("response %+v", resp.TypeMeta)
			}
			if resp.CacheDuration == nil || resp.CacheDuration.Duration <= 0 || resp.CacheDuration.Duration > p.DefaultCacheDuration.Duration*2 {
				t.Fatalf("cacheDuration %v", resp.CacheDuration)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// BenchmarkHelperExecWarm: one kubelet exec of the helper binary (process
// start included) answered from a warm agent cache.
func BenchmarkHelperExecWarm(b *testing.B) {
	e := newEnv(b, false)
	req := kubeletRequest(b, "ghcr.io/org/app:v1", "")
	if r := execHelper(b, "pullgate-credential-provider", req, nil, "--socket", e.agent.Socket); r.code != 0 {
		b.Fatalf("warm-up: %d %s", r.code, r.stderr)
	}
	bin := filepath.Join(binDir, "pullgate-credential-provider")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "--socket", e.agent.Socket)
		cmd.Stdin = bytes.NewReader(req)
		var out bytes.Buffer
		cmd.Stdout = &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if n := e.hub.TokenRequests.Load(); n != 1 {
		b.Fatalf("%d hub round trips: the cache was not warm", n)
	}
}

// BenchmarkHelperExecCold: helper → agent → NATS → (fake) hub → back for a
// repository the agent has not cached yet, process start included.
func BenchmarkHelperExecCold(b *testing.B) {
	e := newEnv(b, false)
	bin := filepath.Join(binDir, "pullgate-credential-provider")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := kubeletRequest(b, fmt.Sprintf("ghcr.io/org/app-%d:v1", i), "")
		cmd := exec.Command(bin, "--socket", e.agent.Socket)
		cmd.Stdin = bytes.NewReader(req)
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
	if n := e.hub.TokenRequests.Load(); n != int64(b.N) {
		b.Fatalf("%d hub round trips for %d cold requests", n, b.N)
	}
}

// BenchmarkAgentSocketWarm: the agent's share of a warm request (unix
// socket round trip answered from the cache), without process start.
func BenchmarkAgentSocketWarm(b *testing.B) {
	e := newEnv(b, false)
	req := wire.CredentialsRequest{Image: "ghcr.io/org/app:v1"}
	if _, err := e.agent.Ask(req); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := agentclient.Credentials(context.Background(), e.agent.Socket, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

// The kubelet keeps a cached answer even when pulls with it fail: after
// `install enable` or `install update` the old token is dead at the hub,
// so the kubelet must not cache it for the token's whole life.
func TestKubeletCacheDurationCapped(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct {
		args     []string
		min, max time.Duration
	}{
		{nil, time.Second, 30 * time.Second},
		{[]string{"--max-cache-duration", "5s"}, time.Second, 5 * time.Second},
		{[]string{"--max-cache-duration", "0"}, time.Minute, 10*time.Minute - 30*time.Second},
	} {
		r := execHelper(t, "pullgate-credential-provider", kubeletRequest(t, "ghcr.io/org/app:v1", ""), nil,
			append([]string{"--socket", e.agent.Socket}, tc.args...)...)
		resp := decodeResponse(t, r.stdout)
		if r.code != 0 || resp.CacheDuration == nil || resp.CacheDuration.Duration < tc.min || resp.CacheDuration.Duration > tc.max {
			t.Errorf("%v: exit %d, cacheDuration %v, want %v-%v: %s", tc.args, r.code, resp.CacheDuration, tc.min, tc.max, r.stderr)
		}
		if a := resp.Auth["ghcr.io"]; a.Password != "" {
			e.tokens = append(e.tokens, a.Password)
		}
	}
}
