package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/pkg/wire"
)

func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb, envOf(env))
	return code, out.String(), errb.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "kubelet-config"},
		{[]string{"run", "--help"}, 0, "--join-token-file"},
		{[]string{"run", "--help"}, 0, "Examples:"},
		{[]string{"kubelet-config", "--help"}, 0, "/var/lib/rancher/credentialprovider"},
		{[]string{"run"}, 2, "NATS URL is required"},
		{[]string{"run", "--bogus"}, 2, "unknown flag"},
		{[]string{"run", "--nats-url", "nats://x", "--join-token", "a", "--join-token-file", "b"}, 2, "not both"},
		{[]string{"run", "--nats-url", "nats://x", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"run", "--help"}, 0, "--containerd-config-path"},
		{[]string{"run", "--nats-url", "nats://x", "--containerd-config-path", "/etc/containerd/certs.d"}, 2, "hub's URL is required"},
		{[]string{"run", "--nats-url", "nats://x", "--containerd-config-path", "certs.d", "--hub-url", "https://hub"}, 2, "must be absolute"},
		{[]string{"run", "--nats-url", "nats://x", "--containerd-config-path", "/c", "--hub-url", "hub.example.com"}, 2, "http:// or https://"},
		{[]string{"run", "--nats-url", "nats://x", "--containerd-config-path", "/c", "--hub-url", "https://hub", "--mirror-host", "bad host"}, 2, "--mirror-host"},
		{[]string{"run", "--nats-url", "nats://x", "--hub-url", "https://hub"}, 2, "give --containerd-config-path too"},
		{[]string{"kubelet-config"}, 2, "--match-image is required"},
		{[]string{"kubelet-config", "--match-image", "https://ghcr.io"}, 2, "no scheme"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"--version"}, 0, "pullgate-agent dev ("},
	} {
		code, out, errs := run(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d containing %q", tc.args, code, out+errs, tc.code, tc.want)
		}
	}
}

func TestKubeletConfigCommand(t *testing.T) {
	code, out, errs := run(t, map[string]string{EnvSocket: "/run/custom.sock"},
		"kubelet-config", "--shared", "--match-image", "ghcr.io", "--match-image", "hub.example.com", "--cache-duration", "2m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var cfg kubeletv1.CredentialProviderConfig
	if err := yaml.UnmarshalStrict([]byte(out), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p := cfg.Providers[0]
	if cfg.Kind != "CredentialProviderConfig" || p.Name != "pullgate-credential-provider" || len(p.MatchImages) != 2 ||
		p.DefaultCacheDuration.Duration != 2*time.Minute || p.TokenAttributes == nil ||
		strings.Join(p.Args, " ") != "--socket /run/custom.sock" {
		t.Fatalf("config %+v", cfg)
	}
}

// run from the environment only, stopped by SIGTERM.
func TestRunFromEnvAndSIGTERM(t *testing.T) {
	hub := hubfake.New(t)
	cl := hub.AddCluster("prod", false)
	hub.AddInstall(hubfake.Install{Workspace: "ws", ClusterID: cl.ID, Repos: []string{"ghcr.io/org"}})
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	tokFile := filepath.Join(dir, "join")
	os.WriteFile(tokFile, []byte(cl.JoinToken+"\n"), 0o600)
	env := map[string]string{
		EnvNATSURL: hub.URL(), EnvJoinTokenFile: tokFile, EnvStateDir: filepath.Join(dir, "state"),
		EnvSocket: sock, EnvMetricsListen: "127.0.0.1:0", EnvNodeName: "node-from-env",
		EnvExternalMirrorHosts: "ghcr.io", // the runtime routes ghcr.io to the hub
	}
	var stderr agenttest.Logs
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"run", "--log-format", "json"}, &bytes.Buffer{}, &stderr, envOf(env))
	}()
	var creds wire.Credentials
	agenttest.Eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := agentclient.Credentials(ctx, sock, wire.CredentialsRequest{Image: "ghcr.io/org/app"})
		creds = c
		return err == nil
	}, "agent serving")
	if n := hub.Nodes(); len(n) != 1 || n[0].Name != "node-from-env" {
		t.Fatalf("nodes %+v", n)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("socket left after SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"msg":"pullgate agent stopping"`) {
		t.Errorf("no JSON shutdown log:\n%s", stderr.String())
	}
	agenttest.NoSecrets(t, stderr.String(), cl.JoinToken, creds.Password, hub.Nodes()[0].Secret)
}
