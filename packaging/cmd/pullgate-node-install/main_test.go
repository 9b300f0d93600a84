package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	kubeletv1 "k8s.io/kubelet/config/v1"

	"github.com/pullgate/pullgate/agent/kubeletconfig"
	"github.com/pullgate/pullgate/internal/testbuild"
)

// agentBin builds the real pullgate-agent: the installer's config comes
// from its `kubelet-config` command.
func agentBin(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pullgate-node-install-test")
		if err != nil {
			agentErr = err
			return
		}
		agentPath = filepath.Join(dir, "pullgate-agent")
		agentErr = testbuild.Build("./agent/cmd/pullgate-agent", agentPath)
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentPath
}

var (
	agentOnce sync.Once
	agentPath string
	agentErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if agentPath != "" {
		os.RemoveAll(filepath.Dir(agentPath))
	}
	os.Exit(code)
}

type node struct {
	helper, agent, binDir, config string
}

func newNode(t *testing.T, agent string) node {
	t.Helper()
	dir := t.TempDir()
	helper := filepath.Join(dir, "image", "pullgate-credential-provider")
	if err := os.MkdirAll(filepath.Dir(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, []byte("helper v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	return node{
		helper: helper,
		agent:  agent,
		binDir: filepath.Join(dir, "host", "var/lib/rancher/credentialprovider/bin"),
		config: filepath.Join(dir, "host", "var/lib/rancher/credentialprovider/config.yaml"),
	}
}

func (n node) run(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	args := []string{"--helper", n.helper, "--agent", n.agent, "--bin-dir", n.binDir, "--config", n.config}
	args = append(args, extra...)
	var out bytes.Buffer
	code := Main(args, &out, &out)
	return code, out.String()
}

func readConfig(t *testing.T, path string) kubeletv1.CredentialProviderConfig {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeletconfig.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return cfg
}

func TestInstall(t *testing.T) {
	n := newNode(t, agentBin(t))
	code, out := n.run(t, "--", "--shared", "--match-image", "registry.example.com", "--match-image", "hub.example.com")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if strings.Count(out, "installed ") != 3 {
		t.Errorf("want 3 installed lines:\n%s", out)
	}
	// The helper, executable, byte for byte.
	got, err := os.ReadFile(filepath.Join(n.binDir, "pullgate-credential-provider"))
	if err != nil || string(got) != "helper v1" {
		t.Fatalf("helper: %q %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(n.binDir, "pullgate-credential-provider")); fi.Mode().Perm() != 0o755 {
		t.Errorf("helper mode %v", fi.Mode())
	}
	if l, err := os.Readlink(filepath.Join(n.binDir, DockerHelperName)); err != nil || l != "pullgate-credential-provider" {
		t.Errorf("docker link: %q %v", l, err)
	}
	cfg := readConfig(t, n.config)
	if len(cfg.Providers) != 1 {
		t.Fatalf("providers: %+v", cfg.Providers)
	}
	p := cfg.Providers[0]
	if p.Name != "pullgate-credential-provider" || strings.Join(p.MatchImages, ",") != "registry.example.com,hub.example.com" {
		t.Errorf("provider: %+v", p)
	}
	if p.TokenAttributes == nil || p.TokenAttributes.ServiceAccountTokenAudience != "pullgate" ||
		p.TokenAttributes.RequireServiceAccount == nil || !*p.TokenAttributes.RequireServiceAccount {
		t.Errorf("shared: tokenAttributes %+v", p.TokenAttributes)
	}

	// Idempotent: a restarted pod changes nothing.
	code, out = n.run(t, "--", "--shared", "--match-image", "registry.example.com", "--match-image", "hub.example.com")
	if code != 0 || strings.Count(out, "unchanged ") != 3 || strings.Contains(out, "restart") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}

	// A new helper version replaces the old one.
	if err := os.WriteFile(n.helper, []byte("helper v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out = n.run(t, "--", "--shared", "--match-image", "registry.example.com", "--match-image", "hub.example.com"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(n.binDir, "pullgate-credential-provider")); string(got) != "helper v2" {
		t.Errorf("helper not updated: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(n.binDir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestMergeKeepsOtherProviders(t *testing.T) {
	n := newNode(t, agentBin(t))
	existing := `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
  - name: pullgate-credential-provider
    matchImages: ["old.example.com"]
    defaultCacheDuration: 1m
    apiVersion: credentialprovider.kubelet.k8s.io/v1
`
	if err := os.MkdirAll(filepath.Dir(n.config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.config, []byte(existing), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := n.run(t, "--docker-credential-link=false", "--", "--match-image", "ghcr.io"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	cfg := readConfig(t, n.config)
	if len(cfg.Providers) != 2 || cfg.Providers[0].Name != "ecr-credential-provider" ||
		cfg.Providers[1].Name != "pullgate-credential-provider" || cfg.Providers[1].MatchImages[0] != "ghcr.io" {
		t.Fatalf("merged providers: %+v", cfg.Providers)
	}
	if cfg.Providers[1].TokenAttributes != nil {
		t.Errorf("single-workspace config has tokenAttributes")
	}
	if _, err := os.Lstat(filepath.Join(n.binDir, DockerHelperName)); !os.IsNotExist(err) {
		t.Errorf("docker link made with --docker-credential-link=false: %v", err)
	}
}

// TestConfigInPlace: the kubeadm preset mounts only the config file (its
// directory holds the cluster's keys); the file is rewritten, not renamed
// over, and its directory is never written to.
func TestConfigInPlace(t *testing.T) {
	n := newNode(t, agentBin(t))
	dir := filepath.Dir(n.config)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.config, nil, 0o644); err != nil { // FileOrCreate makes it empty
		t.Fatal(err)
	}
	before, _ := os.Stat(n.config)
	if code, out := n.run(t, "--config-in-place", "--", "--match-image", "ghcr.io"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	after, _ := os.Stat(n.config)
	if !os.SameFile(before, after) {
		t.Error("config file replaced, want rewritten in place")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("wrote next to the config: %v", left)
	}
	if cfg := readConfig(t, n.config); len(cfg.Providers) != 1 || cfg.Providers[0].MatchImages[0] != "ghcr.io" {
		t.Errorf("config: %+v", cfg)
	}
}

func TestRefusesToClobber(t *testing.T) {
	n := newNode(t, agentBin(t))
	if err := os.MkdirAll(filepath.Dir(n.config), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nprovidres: []\n",
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders: []\n",
	} {
		if err := os.WriteFile(n.config, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := n.run(t, "--", "--match-image", "ghcr.io")
		if code != 1 || !strings.Contains(out, "left as it is") {
			t.Errorf("exit %d, want 1 with a clear error:\n%s", code, out)
		}
		if got, _ := os.ReadFile(n.config); string(got) != bad {
			t.Errorf("config overwritten:\n%s", got)
		}
	}
}

func TestBadArgs(t *testing.T) {
	n := newNode(t, "/nonexistent/pullgate-agent")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--config", "/x.yaml"}, 2, "--bin-dir is required"},
		{[]string{"--bin-dir", "relative/bin"}, 2, "absolute"},
		{[]string{"--bin-dir", "/b", "--plugin-name", "a/b"}, 2, "plain file name"},
		{[]string{"--bin-dir", "/b", "--", "--plugin-name", "x"}, 2, "before --"},
		{[]string{"--help"}, 0, "Usage"},
	} {
		var out bytes.Buffer
		if code := Main(c.args, &out, &out); code != c.code || !strings.Contains(out.String(), c.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.msg, out.String())
		}
	}
	// The agent's own validation reaches the operator.
	n.agent = agentBin(t)
	code, out := n.run(t, "--", "--match-image", "https://ghcr.io")
	if code != 1 || !strings.Contains(out, "no scheme") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
