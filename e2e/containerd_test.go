//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// criContainerd is a real containerd 2.4 run as root in a temporary
// directory, with CRI and the native snapshotter (no runc, no mounts:
// pulls only), driven over CRI the way the kubelet drives it.
type criContainerd struct {
	*proc
	dir, root, state, certs, sock string
	images                        runtimeapi.ImageServiceClient
}

func containerdBinary(t *testing.T) string {
	// The pinned build first: a distribution's containerd may be 1.x,
	// which does not read a version 3 configuration.
	p := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin", "containerd")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("containerd"); err == nil {
		if out, _ := exec.Command(p, "--version").Output(); bytes.Contains(out, []byte(" v2.")) {
			return p
		}
	}
	t.Fatal("no containerd 2.x binary: run make tools (it builds containerd into .cache/bin)")
	return ""
}

// startContainerd runs containerd with the configuration that works here
// (../shared/REAL-COMPONENTS.md): CRI's registry config_path is c.certs.
func startContainerd(t *testing.T, name string) *criContainerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the containerd e2e tests run containerd as root")
	}
	dir := t.TempDir()
	c := &criContainerd{dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		certs: filepath.Join(dir, "certs.d"), sock: filepath.Join(dir, "containerd.sock")}
	if err := os.MkdirAll(c.certs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Beyond the recipe: NRI off (its socket is the global
	// /run/nri/nri.sock) and the opt directory inside dir (default
	// /opt/containerd), so that nothing lands outside dir and two
	// instances do not share a socket.
	conf := fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %q
[plugins."io.containerd.transfer.v1.local"]
  [[plugins."io.containerd.transfer.v1.local".unpack_config]]
    platform = "linux/amd64"
    snapshotter = "native"
    differ = "walking"
`, c.root, c.state, c.sock, filepath.Join(dir, "opt"), c.certs)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.proc = startProc(t, name, dir, nil, containerdBinary(t), "--config", cfg, "--log-level", "info")
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.images = runtimeapi.NewImageServiceClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		cancel()
		if err == nil {
			return c
		}
		select {
		case err := <-c.exited:
			t.Fatalf("%s exited: %v\n%s", name, err, tail(c.log.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s CRI not serving after 30s: %v\n%s", name, err, tail(c.log.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pull is CRI PullImage, timed.
func (c *criContainerd) pull(image string, auth *runtimeapi.AuthConfig) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}, Auth: auth})
	took := time.Since(start)
	if err != nil {
		return "", took, err
	}
	return resp.ImageRef, took, nil
}

func (c *criContainerd) mustPull(t *testing.T, image string, auth *runtimeapi.AuthConfig) time.Duration {
	t.Helper()
	if _, took, err := c.pull(image, auth); err != nil {
		t.Fatalf("CRI PullImage %s: %v\ncontainerd log:\n%s", image, err, tail(c.log.String(), 20))
	} else {
		return took
	}
	return 0
}

// status is CRI ImageStatus (nil when containerd does not have the image).
func (c *criContainerd) status(t *testing.T, image string) *runtimeapi.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", image, err)
	}
	return resp.Image
}

// hasImage checks that containerd holds image with the manifest digest
// the upstream has.
func (c *criContainerd) hasImage(t *testing.T, image, digest string) {
	t.Helper()
	img := c.status(t, image)
	if img == nil {
		t.Fatalf("containerd does not list %s after the pull", image)
	}
	repo := image[:strings.LastIndexByte(image, ':')]
	if !slices.Contains(img.RepoDigests, repo+"@"+digest) {
		t.Fatalf("%s: repo digests %v, want %s@%s", image, img.RepoDigests, repo, digest)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range list.Images {
		if i.Id == img.Id {
			return
		}
	}
	t.Fatalf("ListImages lacks %s", image)
}

func (c *criContainerd) remove(t *testing.T, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err != nil {
		t.Fatalf("RemoveImage %s: %v", image, err)
	}
	if c.status(t, image) != nil {
		t.Fatalf("%s still present after RemoveImage", image)
	}
}

// criAuth does what the kubelet does before PullImage: exec the helper
// for the image (when matchImages covers it) and pick the auth entry whose
// key matches the image. nil means an anonymous pull.
func (k *kubelet) criAuth(image, saToken string) *runtimeapi.AuthConfig {
	k.t.Helper()
	if !k.matches(image) {
		return nil
	}
	resp, _, _ := k.credentials(image, saToken)
	if resp == nil {
		return nil
	}
	best := ""
	for key := range resp.Auth {
		if imageMatches(key, image) && len(key) > len(best) {
			best = key
		}
	}
	if best == "" {
		k.t.Fatalf("helper answered for %s with keys that do not match it: %v", image, resp.Auth)
	}
	a := resp.Auth[best]
	return &runtimeapi.AuthConfig{Username: a.Username, Password: a.Password}
}

// digestOf returns an image's manifest digest as a string.
func digestOf(t *testing.T, img interface{ RawManifest() ([]byte, error) }) string {
	t.Helper()
	b, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// waitFor polls cond for up to d and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func fileHas(path, want string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), want)
}

func gone(path string) bool {
	_, err := os.Stat(path)
	return os.IsNotExist(err)
}

// noSecretOnNode fails if any secret appears in a file under dirs, in one
// of the texts, or in the environment of one of the processes.
func noSecretOnNode(t *testing.T, secrets []string, dirs []string, texts map[string]string, procs map[string]int) {
	t.Helper()
	check := func(where string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("upstream password found in %s", where)
			}
		}
	}
	files := 0
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil {
				files++
				check(p, b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for where, s := range texts {
		check(where, []byte(s))
	}
	for name, pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatalf("environment of %s: %v", name, err)
		}
		check(name+" environment", b)
		b, _ = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		check(name+" command line", b)
	}
	if files < 10 {
		t.Fatalf("scanned only %d files: wrong directories?", files)
	}
}

// TestContainerd is the production path of a single-workspace node with a
// real containerd: the kubelet's helper, CRI PullImage, hosts.toml mirrors
// written by the agent, the path-prefix form, revocation, the audit trail,
// skopeo through docker-credential-pullgate, and no upstream password on
// the node.
func TestContainerd(t *testing.T) {
	upA := testupstream.StartDistribution(t)
	upB := testupstream.StartDistribution(t)
	imgA := upA.PushRandomImage(t, "org/app", "v1", 2, 512<<10)
	imgB := upB.PushRandomImage(t, "team/tool", "v1", 1, 256<<10)
	// Three different 64 MiB images for cold pulls, through the hub and
	// straight.
	var bigDigests []string
	for i := range 3 {
		big, _ := upA.PushBlobImage(t, fmt.Sprintf("org/big%d", i), "v1", 64<<20)
		bigDigests = append(bigDigests, digestOf(t, big))
	}
	digestA, digestB := digestOf(t, imgA), digestOf(t, imgB)

	ctr := startContainerd(t, "containerd")
	// The operator's own configuration for another registry: never touched.
	foreign := filepath.Join(ctr.certs, "quay.io", "hosts.toml")
	os.MkdirAll(filepath.Dir(foreign), 0o755)
	foreignText := "server = \"https://quay.io\"\n"
	os.WriteFile(foreign, []byte(foreignText), 0o644)

	h := startHub(t, t.TempDir(), "")
	c := h.cli
	c.must("", "workspace", "create", "acme")
	c.must(upA.Password+"\n", "registry", "add", "-w", "acme", "--name", "a", "--host", "registry-a.corp",
		"--endpoint", upA.URL, "--allow-private-network", "--username", upA.User, "--password-stdin")
	c.must(upB.Password+"\n", "registry", "add", "-w", "acme", "--name", "b", "--host", "registry-b.corp",
		"--endpoint", upB.URL, "--allow-private-network", "--username", upB.User, "--password-stdin")
	join := strings.TrimSpace(c.must("", "cluster", "create", "edge", "--workspace", "acme"))
	c.must("", "install", "create", "-w", "acme", "--name", "app-a", "--cluster", "edge", "--repo", "registry-a.corp/org/*")
	c.must("", "install", "create", "-w", "acme", "--name", "app-b", "--cluster", "edge", "--repo", "registry-b.corp/team/*")

	// A short mirror grace so the test sees mirrors go (default 15m).
	a := startAgent(t, h.nats, join, "--containerd-config-path", ctr.certs, "--hub-url", "http://"+h.addr, "--mirror-grace", "2s")
	k := newKubelet(t, a, "--match-image", "registry-a.corp", "--match-image", "registry-b.corp", "--match-image", h.addr)
	hostsA := filepath.Join(ctr.certs, "registry-a.corp", "hosts.toml")
	hostsB := filepath.Join(ctr.certs, "registry-b.corp", "hosts.toml")
	server := fmt.Sprintf("server = \"http://%s/v2\"", h.addr)
	waitFor(t, 10*time.Second, "agent writes hosts.toml for both upstreams", func() bool {
		return fileHas(hostsA, server) && fileHas(hostsB, server)
	})
	wantHosts, _ := os.ReadFile(hostsA)
	for _, want := range []string{"# managed by pullgate-agent", "override_path = true", `capabilities = ["pull", "resolve"]`} {
		if !strings.Contains(string(wantHosts), want) {
			t.Fatalf("hosts.toml lacks %q:\n%s", want, wantHosts)
		}
	}
	if strings.Contains(string(wantHosts), "[host") || strings.Contains(string(wantHosts), upA.Host) {
		t.Fatalf("hosts.toml names another host than the hub:\n%s", wantHosts)
	}
	if fi, _ := os.Stat(hostsA); fi.Mode().Perm() != 0o644 {
		t.Fatalf("hosts.toml mode %v", fi.Mode().Perm())
	}

	// Steps build on each other: stop at the first failure.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	mirrorA := "registry-a.corp/org/app:v1"
	mirrorB := "registry-b.corp/team/tool:v1"
	prefixA := h.addr + "/registry-a.corp/org/app:v1"
	// hubRefused: containerd was refused by the hub (it never resolves
	// registry-a.corp itself: the hub is the mirror's only host).
	hubRefused := func(err error) bool {
		return err != nil && isAuthError(err) && strings.Contains(err.Error(), h.addr) &&
			!strings.Contains(err.Error(), "https://registry-a.corp")
	}

	step("mirror", func(t *testing.T) {
		for _, tc := range []struct{ image, digest string }{{mirrorA, digestA}, {mirrorB, digestB}} {
			auth := k.criAuth(tc.image, "")
			if auth == nil || auth.Password == "" {
				t.Fatalf("helper gave no credentials for %s", tc.image)
			}
			took := ctr.mustPull(t, tc.image, auth)
			ctr.hasImage(t, tc.image, tc.digest)
			t.Logf("mirror pull %s: %v", tc.image, took.Round(time.Millisecond))
		}
		// The same image without credentials: the hub refuses, and
		// containerd has nowhere else to go.
		ctr.remove(t, mirrorA)
		if _, _, err := ctr.pull(mirrorA, nil); !hubRefused(err) {
			t.Fatalf("anonymous mirror pull: want the hub's authorization error, got %v", err)
		}
	})

	step("path-prefix", func(t *testing.T) {
		auth := k.criAuth(prefixA, "")
		if auth == nil {
			t.Fatalf("helper gave no credentials for %s", prefixA)
		}
		ctr.mustPull(t, prefixA, auth)
		ctr.hasImage(t, prefixA, digestA)
	})

	step("revocation", func(t *testing.T) {
		auth := k.criAuth(mirrorA, "") // what the kubelet holds in its cache
		ctr.mustPull(t, mirrorA, auth)
		ctr.hasImage(t, mirrorA, digestA)
		c.must("", "install", "disable", "-w", "acme", "app-a")
		disabled := time.Now()
		ctr.remove(t, mirrorA)
		_, _, err := ctr.pull(mirrorA, auth)
		refusedIn := time.Since(disabled)
		if !hubRefused(err) {
			t.Fatalf("pull with the revoked install's token: want the hub's authorization error, got %v", err)
		}
		if refusedIn > time.Second {
			t.Fatalf("pull refused %v after install disable returned, want within 1s", refusedIn)
		}
		t.Logf("install disable → RemoveImage → PullImage refused (%v) after %v", shortErr(err), refusedIn.Round(time.Millisecond))
		if again := k.criAuth(mirrorA, ""); again != nil {
			t.Fatal("helper still hands out a token for the disabled install")
		}
		// Path-prefix images of the install are refused as well.
		ctr.remove(t, prefixA)
		if _, _, err := ctr.pull(prefixA, auth); !hubRefused(err) {
			t.Fatalf("path-prefix pull with the revoked token: %v", err)
		}
		// The other install is unaffected.
		ctr.remove(t, mirrorB)
		ctr.mustPull(t, mirrorB, k.criAuth(mirrorB, ""))

		c.must("", "install", "enable", "-w", "acme", "app-a")
		fresh := k.criAuth(mirrorA, "")
		if fresh == nil || fresh.Password == auth.Password {
			t.Fatal("re-enabled install: no fresh token")
		}
		ctr.mustPull(t, mirrorA, fresh)
		ctr.hasImage(t, mirrorA, digestA)
	})

	step("skopeo", func(t *testing.T) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			t.Fatal("skopeo not found: apt-get install skopeo")
		}
		// containers-auth.json with credHelpers → docker-credential-pullgate,
		// as CRI-O, podman and skopeo read it. The helper protocol passes
		// the registry host only (here the hub's), so the node's cluster
		// must hold one install for it (edge holds two: ambiguous). A CI
		// runner node of its own cluster, then.
		ciJoin := strings.TrimSpace(c.must("", "cluster", "create", "ci", "--workspace", "acme"))
		c.must("", "install", "create", "-w", "acme", "--name", "ci", "--cluster", "ci", "--repo", "registry-a.corp/org/*")
		runner := startAgent(t, h.nats, ciJoin)
		work := t.TempDir()
		binDir := filepath.Join(work, "bin")
		os.MkdirAll(binDir, 0o755)
		if err := os.Symlink(binary(t, "pullgate-credential-provider", "./helper/cmd/pullgate-credential-provider"),
			filepath.Join(binDir, "docker-credential-pullgate")); err != nil {
			t.Fatal(err)
		}
		authFile := filepath.Join(work, "auth.json")
		os.WriteFile(authFile, []byte(fmt.Sprintf(`{"credHelpers": {%q: "pullgate"}}`, h.addr)), 0o600)
		dest := filepath.Join(work, "image")
		cmd := exec.Command(skopeo, "copy", "--authfile", authFile, "--src-tls-verify=false", "docker://"+prefixA, "dir:"+dest)
		cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "PULLGATE_SOCKET="+runner.socket,
			"REGISTRY_AUTH_FILE="+authFile, "HOME="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy through docker-credential-pullgate: %v\n%s", err, out)
		}
		m, err := os.ReadFile(filepath.Join(dest, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(m); "sha256:"+hex.EncodeToString(sum[:]) != digestA {
			t.Fatal("skopeo copied another manifest")
		}
		// Without the helper there are no credentials and the hub refuses.
		os.WriteFile(authFile, []byte(`{}`), 0o600)
		cmd = exec.Command(skopeo, "inspect", "--authfile", authFile, "--tls-verify=false", "docker://"+prefixA)
		cmd.Env = append(os.Environ(), "HOME="+work)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("skopeo without credentials: %s", out)
		}
	})

	step("audit", func(t *testing.T) {
		var events []map[string]any
		want := func() bool {
			events = decodeEvents(t, c.must("", "audit", "-w", "acme", "-o", "json"))
			seen := map[string]int64{}
			for _, e := range events {
				if e["kind"] == "blob" && e["status"] == float64(200) {
					b, _ := e["bytes"].(float64)
					seen[fmt.Sprint(e["upstream"], "/", e["repository"])] += int64(b)
				}
			}
			return seen["registry-a.corp/org/app"] >= 1<<20 && seen["registry-b.corp/team/tool"] >= 256<<10
		}
		deadline := time.Now().Add(5 * time.Second)
		for !want() {
			if time.Now().After(deadline) {
				t.Fatalf("audit trail lacks the pulls with bytes: %v", events)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, e := range events {
			if e["cluster"] == "" && e["status"] == float64(200) {
				t.Errorf("pull through a node without the cluster in the audit event: %v", e)
			}
		}
		t.Logf("audit trail: %d events", len(events))
	})

	step("hosts.toml follows installs", func(t *testing.T) {
		c.must("", "install", "delete", "-w", "acme", "app-b")
		time.Sleep(500 * time.Millisecond)
		if !fileHas(hostsB, server) {
			t.Fatal("registry-b.corp's mirror went before its grace period: a token the kubelet caches could reach the upstream")
		}
		took := waitFor(t, 10*time.Second, "registry-b.corp removed after its install was deleted", func() bool {
			return gone(filepath.Dir(hostsB))
		})
		t.Logf("registry-b.corp/hosts.toml removed %v after install delete returned", took)
		if !fileHas(hostsA, server) {
			t.Fatal("registry-a.corp's file went too")
		}
		c.must("", "install", "create", "-w", "acme", "--name", "app-b", "--cluster", "edge", "--repo", "registry-b.corp/team/*")
		took = waitFor(t, 5*time.Second, "registry-b.corp back after the install was re-created", func() bool {
			return fileHas(hostsB, server)
		})
		t.Logf("registry-b.corp/hosts.toml written %v after install create returned", took)
		ctr.remove(t, mirrorB)
		ctr.mustPull(t, mirrorB, k.criAuth(mirrorB, ""))

		// A hand edit that adds the upstream as a fallback is undone.
		edited := string(wantHosts) + "\n[host.\"https://registry-a.corp\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
		os.WriteFile(hostsA, []byte(edited), 0o644)
		took = waitFor(t, 5*time.Second, "hand edit restored", func() bool {
			b, _ := os.ReadFile(hostsA)
			return bytes.Equal(b, wantHosts)
		})
		t.Logf("hand-edited hosts.toml restored after %v", took.Round(time.Millisecond))
		os.RemoveAll(filepath.Dir(hostsA))
		waitFor(t, 5*time.Second, "deleted directory restored", func() bool {
			b, _ := os.ReadFile(hostsA)
			return bytes.Equal(b, wantHosts)
		})
		if b, _ := os.ReadFile(foreign); string(b) != foreignText {
			t.Fatal("the operator's quay.io hosts.toml was changed")
		}
		waitFor(t, 5*time.Second, "restores counted", func() bool {
			n := a.metric(t, "pullgate_agent_containerd_mirror_restores_total")
			return n != "" && n != "0" && n != "1"
		})
	})

	step("no upstream password on the node", func(t *testing.T) {
		noSecretOnNode(t, []string{upA.Password, upB.Password},
			[]string{ctr.root, ctr.state, ctr.certs, a.stateDir, filepath.Dir(a.socket)},
			map[string]string{"agent log": a.log.String(), "containerd log": ctr.log.String()},
			map[string]int{"agent": a.cmd.Process.Pid, "containerd": ctr.cmd.Process.Pid})
	})

	// Cold pulls of the same 64 MiB images through the hub (mirror form)
	// and straight from the upstream, each into a containerd that has
	// never seen them. The straight ones run in a second containerd that
	// holds the upstream's credentials itself, so that the first one's
	// directories stay free of them. Three images, the order alternating.
	step("cold pull through the hub vs straight", func(t *testing.T) {
		direct := startContainerd(t, "containerd-direct")
		var viaHub, straight []time.Duration
		for i, digest := range bigDigests {
			mirror := fmt.Sprintf("registry-a.corp/org/big%d:v1", i)
			plain := fmt.Sprintf("%s/org/big%d:v1", upA.Host, i)
			hub := func() {
				viaHub = append(viaHub, ctr.mustPull(t, mirror, k.criAuth(mirror, "")))
				ctr.hasImage(t, mirror, digest)
			}
			up := func() {
				straight = append(straight, direct.mustPull(t, plain, &runtimeapi.AuthConfig{Username: upA.User, Password: upA.Password}))
				direct.hasImage(t, plain, digest)
			}
			if i%2 == 0 {
				hub()
				up()
			} else {
				up()
				hub()
			}
			t.Logf("cold CRI pull of 64 MiB image %d: through the hub %v, straight %v", i,
				viaHub[i].Round(time.Millisecond), straight[i].Round(time.Millisecond))
		}
		mh, ms := median(viaHub), median(straight)
		t.Logf("FIGURE cold CRI pull of a 64 MiB image, median of 3: through the hub %v, straight from the upstream %v (%.2fx)",
			mh.Round(time.Millisecond), ms.Round(time.Millisecond), float64(mh)/float64(ms))
	})
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func isAuthError(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "401") || strings.Contains(s, "403") || strings.Contains(s, "unauthorized") ||
		strings.Contains(s, "authoriz") || strings.Contains(s, "denied")
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// TestContainerdSharedNode: on a shared (multi-workspace) cluster the
// agent writes mirrors only for the hosts the operator enabled. A public
// image of another upstream host is pulled by containerd straight from
// that upstream, anonymously: no install token ever reaches it.
func TestContainerdSharedNode(t *testing.T) {
	upA := testupstream.StartDistribution(t)
	imgA := upA.PushRandomImage(t, "org/app", "v1", 1, 256<<10)
	public := testupstream.StartInProcess(t) // anonymous pulls; logs Authorization headers
	pubImg := public.PushRandomImage(t, "library/redis", "7-alpine", 1, 128<<10)

	ctr := startContainerd(t, "containerd")
	// The operator's own hosts.toml for public.corp (here: how the node
	// reaches it). The agent must leave it alone.
	own := filepath.Join(ctr.certs, "public.corp", "hosts.toml")
	os.MkdirAll(filepath.Dir(own), 0o755)
	ownText := fmt.Sprintf("server = %q\n", public.URL)
	os.WriteFile(own, []byte(ownText), 0o644)

	iss := testsa.New(t)
	h := startHub(t, t.TempDir(), "")
	c := h.cli
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwks, iss.JWKS(), 0o600)
	join := strings.TrimSpace(c.must("", "cluster", "create", "akash", "--sa-jwks", jwks))
	c.must("", "workspace", "create", "tenant-a")
	c.must(upA.Password+"\n", "registry", "add", "-w", "tenant-a", "--name", "a", "--host", "registry-a.corp",
		"--endpoint", upA.URL, "--allow-private-network", "--username", upA.User, "--password-stdin")
	// The tenant also has a credential for the public registry's host
	// (private repositories there), so the hub lists that host too.
	c.must("unused\n", "registry", "add", "-w", "tenant-a", "--name", "pub", "--host", "public.corp",
		"--endpoint", public.URL, "--allow-private-network", "--username", "tenant", "--password-stdin")
	// And a third private registry the operator did not enable for
	// mirroring on this node.
	c.must(upA.Password+"\n", "registry", "add", "-w", "tenant-a", "--name", "c", "--host", "registry-c.corp",
		"--endpoint", upA.URL, "--allow-private-network", "--username", upA.User, "--password-stdin")
	c.must("", "install", "create", "-w", "tenant-a", "--name", "app", "--cluster", "akash", "--namespace", "ns-a",
		"--repo", "registry-a.corp/org/*", "--repo", "public.corp/tenant-a/*", "--repo", "registry-c.corp/org/*")

	a := startAgent(t, h.nats, join, "--containerd-config-path", ctr.certs, "--hub-url", "http://"+h.addr,
		"--mirror-host", "registry-a.corp")
	k := newKubelet(t, a, "--shared", "--match-image", "registry-a.corp", "--match-image", h.addr)
	hostsA := filepath.Join(ctr.certs, "registry-a.corp", "hosts.toml")
	waitFor(t, 10*time.Second, "registry-a.corp mirror written", func() bool {
		return fileHas(hostsA, fmt.Sprintf("server = \"http://%s/v2\"", h.addr))
	})

	// The tenant's private image through the hub, chosen by the pod's
	// service-account token.
	mirrorA := "registry-a.corp/org/app:v1"
	auth := k.criAuth(mirrorA, iss.Token(t, "ns-a", "default", testsa.Opts{}))
	if auth == nil {
		t.Fatal("no credentials for the tenant's pod")
	}
	ctr.mustPull(t, mirrorA, auth)
	ctr.hasImage(t, mirrorA, digestOf(t, imgA))
	// A pod of another namespace gets nothing, and the hub refuses it.
	if k.criAuth(mirrorA, iss.Token(t, "ns-b", "default", testsa.Opts{})) != nil {
		t.Fatal("namespace without an install got credentials")
	}

	// A public image: the kubelet's matchImages does not cover public.corp,
	// so it pulls anonymously, and containerd goes to the upstream itself.
	pub := "public.corp/library/redis:7-alpine"
	if k.matches(pub) {
		t.Fatal("matchImages covers the public host")
	}
	ctr.mustPull(t, pub, k.criAuth(pub, iss.Token(t, "ns-a", "default", testsa.Opts{})))
	ctr.hasImage(t, pub, digestOf(t, pubImg))

	entries, _ := os.ReadDir(ctr.certs)
	var dirs []string
	for _, e := range entries {
		dirs = append(dirs, e.Name())
	}
	if strings.Join(dirs, ",") != "public.corp,registry-a.corp" {
		t.Fatalf("config_path holds %v, want the operator's public.corp and the enabled registry-a.corp only", dirs)
	}
	if b, _ := os.ReadFile(own); string(b) != ownText {
		t.Fatal("the operator's public.corp hosts.toml was changed")
	}
	log := public.Log()
	if len(log) == 0 {
		t.Fatal("the public upstream saw no requests")
	}
	for _, r := range log {
		if r.Authorization {
			t.Fatalf("the public upstream received an Authorization header (%s %s): a token left the hub path", r.Method, r.Path)
		}
	}
}
