package testupstream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinEnv names the environment variable that overrides which
// distribution registry binary StartDistribution runs.
const RegistryBinEnv = "PULLGATE_REGISTRY_BIN"

// distributionUser is the htpasswd user StartDistribution creates.
const distributionUser = "pullgate"

// readyTimeout bounds how long StartDistribution waits for /v2/ to answer.
const readyTimeout = 20 * time.Second

// ProcOption configures StartDistribution.
type ProcOption func(*procConfig)

type procConfig struct {
	noAuth bool
	proxy  *proxyConfig
}

// ProcNoAuth runs the registry without authentication.
func ProcNoAuth() ProcOption {
	return func(c *procConfig) { c.noAuth = true }
}

// ProcProxy runs the registry as a pull-through cache of remoteURL, logging
// in there as user:pass (both may be empty). Such a registry refuses
// pushes.
//
// distribution only hands credentials to the token realms it discovers by
// pinging remoteURL at startup, so the remote must be running and, for the
// credentials to be used at all, must use token auth (WithTokenAuth); a
// Basic-auth remote is contacted anonymously.
func ProcProxy(remoteURL, user, pass string) ProcOption {
	return func(c *procConfig) {
		c.proxy = &proxyConfig{RemoteURL: remoteURL, Username: user, Password: pass}
	}
}

// distConfig is the subset of distribution's configuration file
// (version 0.1, understood by both 2.8 and 3.x) that we write.
type distConfig struct {
	Version string         `yaml:"version"`
	Log     distLog        `yaml:"log"`
	Storage map[string]any `yaml:"storage"`
	HTTP    distHTTP       `yaml:"http"`
	Auth    map[string]any `yaml:"auth,omitempty"`
	Proxy   *proxyConfig   `yaml:"proxy,omitempty"`
}

type distLog struct {
	Level     string `yaml:"level"`
	AccessLog struct {
		Disabled bool `yaml:"disabled"`
	} `yaml:"accesslog"`
}

type distHTTP struct {
	Addr   string `yaml:"addr"`
	Secret string `yaml:"secret"`
}

type proxyConfig struct {
	RemoteURL string `yaml:"remoteurl"`
	Username  string `yaml:"username,omitempty"`
	Password  string `yaml:"password,omitempty"`
}

// process is a running registry child process.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	waitErr error         // valid after done is closed
}

// StartDistribution runs a real distribution registry as a child process on
// 127.0.0.1 with filesystem storage under t.TempDir() and, unless
// ProcNoAuth, htpasswd (bcrypt) auth for a random password. It is killed
// when the test ends.
//
// The binary is $PULLGATE_REGISTRY_BIN, else docker-registry on PATH (the
// Debian package), else <repo root>/.cache/bin/registry.
//
// Only the in-process registry records requests: Requests, TokenRequests
// and Log report nothing for this one.
func StartDistribution(t testing.TB, opts ...ProcOption) *Registry {
	t.Helper()
	var cfg procConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin := registryBinary(t)
	dir := t.TempDir()

	r := &Registry{}
	conf := distConfig{
		Version: "0.1",
		Log:     distLog{Level: "error"},
		Storage: map[string]any{
			"filesystem": map[string]any{"rootdirectory": filepath.Join(dir, "storage")},
			"delete":     map[string]any{"enabled": true},
		},
		HTTP:  distHTTP{Secret: randomHex(t, 16)},
		Proxy: cfg.proxy,
	}
	conf.Log.AccessLog.Disabled = true
	if !cfg.noAuth {
		r.User, r.Password = distributionUser, randomHex(t, 16)
		htpasswd := filepath.Join(dir, "htpasswd")
		r.htpasswd = htpasswd
		if err := writeHtpasswd(htpasswd, r.User, r.Password); err != nil {
			t.Fatalf("testupstream: %v", err)
		}
		conf.Auth = map[string]any{
			"htpasswd": map[string]any{"realm": "testupstream", "path": htpasswd},
		}
	}

	// The port may be taken between FreePort and the registry binding it.
	var lastErr error
	for attempt := range 3 {
		r.Host = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		r.URL = "http://" + r.Host
		conf.HTTP.Addr = r.Host
		p, err := startProcess(t, bin, dir, attempt, conf)
		if err != nil {
			t.Fatalf("testupstream: %v", err)
		}
		if err := p.waitReady(r.URL); err != nil {
			lastErr = err
			p.kill()
			if strings.Contains(p.logTail(50), "address already in use") {
				continue
			}
			break
		}
		r.proc = p
		t.Cleanup(func() {
			p.kill()
			if t.Failed() {
				t.Logf("testupstream: %s log tail:\n%s", filepath.Base(bin), p.logTail(20))
			}
		})
		return r
	}
	t.Fatalf("testupstream: starting %s: %v", bin, lastErr)
	return nil
}

// registryBinary locates the distribution registry binary or fails t.
func registryBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(RegistryBinEnv); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("testupstream: %s=%q: %v", RegistryBinEnv, p, err)
		}
		return abs
	}
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".cache", "bin", "registry")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("testupstream: no distribution registry binary: apt-get install docker-registry, " +
		"or run make tools (or set " + RegistryBinEnv + ")")
	return ""
}

// startProcess writes the config for this attempt and starts the registry,
// with its output going to a log file next to the config.
func startProcess(t testing.TB, bin, dir string, attempt int, conf distConfig) (*process, error) {
	t.Helper()
	confPath := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	b, err := yaml.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("encoding registry config: %w", err)
	}
	if err := os.WriteFile(confPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}
	logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating registry log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(bin, "serve", confPath)
	cmd.Dir = dir
	cmd.Env = registryEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// registryEnv is the environment minus REGISTRY_* overrides, which would
// silently change the config, with OpenTelemetry exporting turned off
// (distribution 3 traces by default).
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_SDK_DISABLED=true")
}

// waitReady polls /v2/ until the registry answers it (401 with auth, 200
// without), the process exits, or readyTimeout passes.
func (p *process) waitReady(url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get(url + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: unexpected status %s", resp.Status)
		}
		select {
		case <-p.done:
			return fmt.Errorf("registry exited (%v) before answering /v2/; log tail:\n%s", p.waitErr, p.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry not ready after %s (last: %v); log tail:\n%s", readyTimeout, err, p.logTail(20))
		}
	}
}

// kill stops the process and waits for it to exit.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last n lines of the registry's output.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PID is the process id of a StartDistribution registry (0 for an
// in-process one), for benchmarks that measure its CPU time.
func (r *Registry) PID() int {
	if r.proc == nil || r.proc.cmd.Process == nil {
		return 0
	}
	return r.proc.cmd.Process.Pid
}

// ProcessLog returns the last lines of a StartDistribution registry's
// output, or "" for an in-process registry.
func (r *Registry) ProcessLog() string {
	if r.proc == nil {
		return ""
	}
	return r.proc.logTail(50)
}

// procLogHint formats the process log tail for failure messages.
func (r *Registry) procLogHint() string {
	if r.proc == nil {
		return ""
	}
	return "\nregistry log tail:\n" + r.proc.logTail(20)
}

// SetPassword changes the password a StartDistribution registry accepts,
// as an upstream's owner rotates a token: from the next request on, only
// pass works. distribution rereads its htpasswd file when the file's
// modification time changes, so the registry keeps running on its port.
func (r *Registry) SetPassword(t testing.TB, pass string) {
	t.Helper()
	if r.htpasswd == "" {
		t.Fatal("testupstream: SetPassword needs a StartDistribution registry with auth")
	}
	if err := writeHtpasswd(r.htpasswd, r.User, pass); err != nil {
		t.Fatalf("testupstream: %v", err)
	}
	// A rewrite within the file system's timestamp granularity would look
	// unchanged to distribution.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(r.htpasswd, later, later); err != nil {
		t.Fatalf("testupstream: %v", err)
	}
	r.Password = pass
}

// writeHtpasswd writes a one-user bcrypt htpasswd file.
func writeHtpasswd(path, user, pass string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hashing htpasswd password: %w", err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing htpasswd: %w", err)
	}
	return nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testupstream: %v", errors.Join(errors.New("reading random bytes"), err))
	}
	return hex.EncodeToString(b)
}
