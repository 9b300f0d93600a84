package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/server"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// Environment knobs.
const (
	// hubBinEnv names a prebuilt pullgate-hub binary to benchmark instead
	// of building one from this checkout.
	hubBinEnv = "PULLGATE_HUB_BIN"
	// hubModeEnv set to "inprocess" runs the hub with server.Run inside the
	// benchmark process (so -cpuprofile/-memprofile cover it) wherever a
	// separate process is not required. Default: child process.
	hubModeEnv = "PULLGATE_BENCH_HUB"
)

// hubReadyTimeout bounds how long a hub may take to answer /readyz.
const hubReadyTimeout = 30 * time.Second

// buildDir holds the hub binary built for this test process; TestMain
// removes it.
var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// hubBinary returns $PULLGATE_HUB_BIN or a pullgate-hub built once from this
// checkout exactly as `make build` builds it.
func hubBinary(b testing.TB) string {
	b.Helper()
	if p := os.Getenv(hubBinEnv); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			b.Fatalf("%s=%q: %v", hubBinEnv, p, err)
		}
		return abs
	}
	root := testupstream.RepoRoot(b)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pullgate-bench-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "pullgate-hub")
		cmd := exec.Command("go", "build", "-trimpath", "-o", builtBin, "./hub/cmd/pullgate-hub")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./hub/cmd/pullgate-hub: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatalf("building the hub: %v", buildErr)
	}
	return builtBin
}

// hub is a running hub with one workspace, one registry credential and one
// install, and a valid install token for it.
type hub struct {
	// URL is "http://127.0.0.1:PORT"; Host is "127.0.0.1:PORT".
	URL, Host string
	// PID is the hub's process id, 0 when it runs in-process.
	PID int
	// Token is an install token (the password of HTTP Basic auth).
	Token string
	// Mode says how the hub runs: "child process" or "in-process".
	Mode string

	dataDir string
	admin   string
	logPath string
}

// startHub starts a hub (a child process unless inProcessOK and
// PULLGATE_BENCH_HUB=inprocess) with its own data dir, HTTP on a free
// 127.0.0.1 port, the embedded NATS server disabled and the pull-through
// cache off (these benchmarks measure the proxy path), and stops it when
// the benchmark ends.
func startHub(b testing.TB, inProcessOK bool) *hub {
	b.Helper()
	if inProcessOK && os.Getenv(hubModeEnv) == "inprocess" {
		return startHubInProcess(b, "")
	}
	return startHubProcess(b, "--cache=off")
}

// startHubProcess starts the built hub as a child process with extra
// serve flags.
func startHubProcess(b testing.TB, extra ...string) *hub {
	b.Helper()
	h := launchHubProcess(b, filepath.Join(b.TempDir(), "data"), extra...)
	h.setup(b)
	return h
}

// launchHubProcess starts the built hub as a child process on dataDir
// (which may already hold a master key and admin token) and waits until it
// is ready; the caller sets it up.
func launchHubProcess(b testing.TB, dataDir string, extra ...string) *hub {
	b.Helper()
	bin := hubBinary(b)
	h := &hub{Mode: "child process", dataDir: dataDir, logPath: filepath.Join(filepath.Dir(dataDir), "hub.log")}
	var lastErr error
	for range 3 {
		h.Host = fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(b))
		h.URL = "http://" + h.Host
		logFile, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		// As deployed: default log level and format; stderr goes to a
		// file so logging never blocks on a pipe.
		cmd := exec.Command(bin, append([]string{"serve", "--data", h.dataDir, "--listen", h.Host, "--nats-listen=", "--metrics-listen="}, extra...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.Env = hubEnv()
		err = cmd.Start()
		logFile.Close()
		if err != nil {
			b.Fatalf("starting %s: %v", bin, err)
		}
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		stop := func() {
			select {
			case <-done:
				return
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if err := waitReady(h.URL, done); err != nil {
			stop()
			lastErr = fmt.Errorf("%v (exit: %v); log tail:\n%s", err, waitErr, h.logTail(20))
			if strings.Contains(h.logTail(20), "address already in use") {
				continue
			}
			break
		}
		h.PID = cmd.Process.Pid
		b.Cleanup(func() {
			stop()
			if b.Failed() {
				b.Logf("hub log tail:\n%s", h.logTail(30))
			}
		})
		return h
	}
	b.Fatalf("starting hub: %v", lastErr)
	return nil
}

// startHubInProcess runs server.Run inside the benchmark process.
// startHubInProcess runs the hub with server.Run in this process; natsListen
// is the embedded NATS server's address ("" disables it).
func startHubInProcess(b testing.TB, natsListen string) *hub {
	b.Helper()
	dir := b.TempDir()
	h := &hub{Mode: "in-process", dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "hub.log")}
	logFile, err := os.Create(h.logPath)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- server.Run(ctx, server.Config{
			DataDir:    h.dataDir,
			Listen:     "127.0.0.1:0",
			NATSListen: natsListen,
			TokenTTL:   10 * time.Minute,
			Cache:      server.CacheConfig{Off: true},
			Logger:     slog.New(slog.NewTextHandler(logFile, nil)),
			Ready:      func(addr string) { addrc <- addr },
		})
	}()
	select {
	case addr := <-addrc:
		h.Host, h.URL = addr, "http://"+addr
	case err := <-errc:
		cancel()
		logFile.Close()
		b.Fatalf("in-process hub: %v", err)
	case <-time.After(hubReadyTimeout):
		cancel()
		b.Fatal("in-process hub not ready")
	}
	b.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(40 * time.Second):
		}
		logFile.Close()
	})
	if err := waitReady(h.URL, nil); err != nil {
		b.Fatal(err)
	}
	h.setup(b)
	return h
}

// hubEnv is the environment minus PULLGATE_* settings that would change
// the hub's store or master key behind the benchmark's back.
func hubEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULLGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

func waitReady(url string, done <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(hubReadyTimeout)
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		select {
		case <-done:
			return errors.New("hub exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub not ready after %s: %v", hubReadyTimeout, err)
		}
	}
}

func (h *hub) logTail(n int) string {
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// setup reads the admin token and creates the workspace and install the
// benchmark pulls through.
func (h *hub) setup(b testing.TB) {
	b.Helper()
	tok, err := os.ReadFile(filepath.Join(h.dataDir, "admin.token"))
	if err != nil {
		b.Fatalf("reading admin token: %v", err)
	}
	h.admin = strings.TrimSpace(string(tok))
	h.api(b, "POST", "/api/v1/workspaces", api.CreateWorkspaceRequest{Name: "bench"}, nil)
	h.api(b, "POST", "/api/v1/workspaces/bench/installs", api.CreateInstallRequest{Name: "bench", AllRepos: true}, nil)
}

// addRegistry stores a credential for an upstream at host ("127.0.0.1:PORT").
// An upstream without auth still gets a (dummy) basic credential: the hub
// needs one to know the workspace may reach the host. The upstreams are
// plain HTTP on loopback, which the hub allows only when told.
func (h *hub) addRegistry(b testing.TB, name, host, user, pass string) {
	b.Helper()
	if user == "" && pass == "" {
		user, pass = "bench", "unused"
	}
	h.api(b, "POST", "/api/v1/workspaces/bench/registries", api.CreateRegistryRequest{
		Name: name, Host: host, Kind: "basic", Username: user, Password: api.Password(pass),
		Insecure: true, AllowPrivateNetwork: true,
	}, nil)
}

// mintToken mints an install token valid for 30 minutes into h.Token.
func (h *hub) mintToken(b testing.TB) {
	b.Helper()
	var tok api.Token
	h.api(b, "POST", "/api/v1/workspaces/bench/installs/bench/tokens", api.MintTokenRequest{TTL: "30m"}, &tok)
	if tok.Token == "" {
		b.Fatal("hub minted an empty install token")
	}
	h.Token = tok.Token
}

func (h *hub) api(b testing.TB, method, path string, in, out any) {
	b.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	req, err := http.NewRequest(method, h.URL+path, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		b.Fatalf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// blobURL is the hub's path-prefix URL of a blob on an upstream.
func (h *hub) blobURL(upstreamHost, repo, digest string) string {
	return h.URL + "/v2/" + upstreamHost + "/" + repo + "/blobs/" + digest
}

// manifestURL is the hub's path-prefix URL of a manifest on an upstream.
func (h *hub) manifestURL(upstreamHost, repo, ref string) string {
	return h.URL + "/v2/" + upstreamHost + "/" + repo + "/manifests/" + ref
}

// auth adds the install token as HTTP Basic password (any username).
func (h *hub) auth(req *http.Request) { req.SetBasicAuth("bench", h.Token) }
