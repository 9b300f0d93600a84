//go:build e2e

package e2e

// The packages and images as an operator gets them: `make package` builds
// the .deb/.rpm, which are installed on this machine with dpkg (root, CI),
// checked, run and purged again; `make images` cross-builds the OCI images
// for amd64 and arm64 and pushes them to a local registry, from which they
// are pulled back and their binaries run.

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/agent/kubeletconfig"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/wire"
)

const pkgVersion = "0.1.0-e2e"

// pkgMake runs make in the repository root with DIST in the git-ignored
// .cache, shared by the tests below (and by reruns: go build and nfpm
// redo their work, the build cache keeps it quick).
func pkgMake(t *testing.T, args ...string) string {
	t.Helper()
	root := testupstream.RepoRoot(t)
	dist := filepath.Join(root, ".cache", "e2e-dist")
	args = append(args, "DIST="+dist, "VERSION="+pkgVersion)
	cmd := exec.Command("make", args...)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	t.Logf("make %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Second))
	return dist
}

// The paths the two packages install, and what must be gone after purge.
var (
	pkgHubFiles = []string{
		"/usr/bin/pullgate-hub",
		"/usr/lib/systemd/system/pullgate-hub.service",
		"/etc/default/pullgate-hub",
	}
	pkgAgentFiles = []string{
		"/usr/bin/pullgate-agent",
		"/usr/bin/pullgate-credential-provider",
		"/usr/bin/docker-credential-pullgate",
		"/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/pullgate-credential-provider",
		"/usr/lib/systemd/system/pullgate-agent.service",
		"/etc/default/pullgate-agent",
		"/etc/pullgate/kubelet-credential-provider.yaml",
		"/etc/pullgate",
	}
	// Created by the scripts or at run time; removed on purge (the hub's
	// data dir only when empty: see TestDebPackages).
	pkgStatePaths = []string{"/var/lib/pullgate", "/var/lib/pullgate-agent", "/etc/pullgate/join-token"}
)

func pkgExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func pkgRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestDebPackages installs the .deb packages on this machine, checks
// files, modes, the binaries and the units, and purges them. It needs root
// and dpkg (CI); it refuses to touch a machine that has pullgate installed.
func TestDebPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs packages: needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg on this machine")
	}
	for _, p := range slices.Concat(pkgHubFiles, pkgAgentFiles, pkgStatePaths) {
		if pkgExists(p) {
			t.Skipf("%s exists: pullgate is installed here, not touching it", p)
		}
	}
	for _, pkg := range []string{"pullgate-hub", "pullgate-agent"} {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output(); strings.Contains(string(out), "installed") {
			t.Skipf("%s is installed here (%s), not touching it", pkg, out)
		}
	}
	_, userErr := user.Lookup("pullgate")
	userExisted := userErr == nil
	kubeletDirExisted := pkgExists("/usr/libexec/kubernetes")

	dist := pkgMake(t, "package", "ARCHS="+runtime.GOARCH, "FORMATS=deb rpm")
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	debVersion := strings.Replace(pkgVersion, "-", "~", 1)
	hubDeb := filepath.Join(dist, fmt.Sprintf("pullgate-hub_%s_%s.deb", debVersion, debArch))
	agentDeb := filepath.Join(dist, fmt.Sprintf("pullgate-agent_%s_%s.deb", debVersion, debArch))

	// Whatever happens below, the machine is left as it was.
	t.Cleanup(func() {
		exec.Command("dpkg", "--purge", "pullgate-agent", "pullgate-hub").Run()
		for _, p := range pkgStatePaths {
			os.RemoveAll(p)
		}
		if !userExisted {
			exec.Command("userdel", "pullgate").Run()
			exec.Command("groupdel", "pullgate").Run()
		}
		if !kubeletDirExisted {
			os.RemoveAll("/usr/libexec/kubernetes")
		}
	})

	out := pkgRun(t, "dpkg", "-i", hubDeb, agentDeb)
	t.Logf("dpkg -i:\n%s", out)
	for _, want := range []string{"pullgate-agent: configure, then start it", "pullgate-hub: listening on 127.0.0.1:5080"} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i output lacks %q", want)
		}
	}

	// Files, modes, owners.
	for path, want := range map[string]fs.FileMode{
		"/usr/bin/pullgate-hub":                          0o755,
		"/usr/bin/pullgate-agent":                        0o755,
		"/usr/bin/pullgate-credential-provider":          0o755,
		"/usr/lib/systemd/system/pullgate-hub.service":   0o644,
		"/usr/lib/systemd/system/pullgate-agent.service": 0o644,
		"/etc/default/pullgate-hub":                      0o600,
		"/etc/default/pullgate-agent":                    0o600,
		"/etc/pullgate/kubelet-credential-provider.yaml": 0o644,
		"/var/lib/pullgate":                              fs.ModeDir | 0o700,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		owner := "root"
		if path == "/var/lib/pullgate" {
			owner = "pullgate"
		}
		if u, err := user.LookupId(strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))); err != nil || u.Username != owner {
			t.Errorf("%s: owner %v %v, want %s", path, u, err, owner)
		}
	}
	for link, target := range map[string]string{
		"/usr/bin/docker-credential-pullgate": "pullgate-credential-provider",
		"/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/pullgate-credential-provider": "/usr/bin/pullgate-credential-provider",
	} {
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("%s -> %q %v, want %s", link, got, err, target)
		}
	}
	pw := pkgRun(t, "getent", "passwd", "pullgate")
	if !strings.Contains(pw, ":/var/lib/pullgate:") || !strings.HasSuffix(strings.TrimSpace(pw), "nologin") {
		t.Errorf("pullgate user: %s", pw)
	}
	conffiles := pkgRun(t, "dpkg-query", "-W", "-f=${Conffiles}\n", "pullgate-hub", "pullgate-agent")
	for _, c := range []string{"/etc/default/pullgate-hub", "/etc/default/pullgate-agent", "/etc/pullgate/kubelet-credential-provider.yaml"} {
		if !strings.Contains(conffiles, c) {
			t.Errorf("%s is not a conffile: %s", c, conffiles)
		}
	}

	// The kubelet config snippet is what the agent generates, for the
	// socket the unit serves.
	data, err := os.ReadFile("/etc/pullgate/kubelet-credential-provider.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeletconfig.Parse(data)
	if err != nil {
		t.Fatalf("installed kubelet config: %v\n%s", err, data)
	}
	if p := cfg.Providers[0]; p.Name != "pullgate-credential-provider" || !slices.Equal(p.Args, []string{"--socket", wire.DefaultSocket}) {
		t.Errorf("kubelet config provider %+v", p)
	}

	// The installed binaries are static and run.
	for _, b := range []string{"/usr/bin/pullgate-hub", "/usr/bin/pullgate-agent", "/usr/bin/pullgate-credential-provider"} {
		pkgCheckStatic(t, b, runtime.GOARCH)
	}
	for _, c := range [][]string{
		{"/usr/bin/pullgate-hub", "serve", "--help"},
		{"/usr/bin/pullgate-hub", "nats-config", "--help"},
		{"/usr/bin/pullgate-agent", "run", "--help"},
		{"/usr/bin/pullgate-agent", "kubelet-config", "--shared", "--match-image", "ghcr.io"},
		{"/usr/bin/pullgate-credential-provider", "--help"},
		{"/usr/bin/docker-credential-pullgate", "version"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", c, err, out)
		}
	}
	// Every installed binary carries the package's version stamp.
	for _, c := range [][]string{
		{"/usr/bin/pullgate-hub", "--version"},
		{"/usr/bin/pullgate-agent", "--version"},
		{"/usr/bin/pullgate-credential-provider", "--version"},
		{"/usr/bin/docker-credential-pullgate", "version"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil || !strings.Contains(string(out), " "+pkgVersion+" (") {
			t.Errorf("%v: %v %q, want version %s", c, err, out, pkgVersion)
		}
	}

	// The units as installed, against the installed binaries.
	if out, err := exec.Command("systemd-analyze", "verify",
		"/usr/lib/systemd/system/pullgate-hub.service", "/usr/lib/systemd/system/pullgate-agent.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The hub runs as the pullgate user with the unit's command line and
	// the packaged defaults, writing its data dir.
	pkgRunHubAsServiceUser(t)

	// Installing the same packages again is an upgrade: the scripts take
	// their other branch and keep the data.
	out = pkgRun(t, "dpkg", "-i", hubDeb, agentDeb)
	if strings.Contains(out, "configure, then start it") {
		t.Errorf("upgrade printed the first-install message:\n%s", out)
	}
	if !pkgExists("/var/lib/pullgate/master.key") {
		t.Error("upgrade lost the hub's data")
	}

	// Remove keeps the conffiles; purge removes them. The hub's data dir
	// stays while it holds data, and says so; the agent's identity goes.
	if err := os.MkdirAll("/var/lib/pullgate-agent", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/var/lib/pullgate-agent/identity.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/pullgate/join-token", []byte("pgj1.x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pkgRun(t, "dpkg", "-r", "pullgate-agent", "pullgate-hub")
	for _, p := range []string{"/usr/bin/pullgate-hub", "/usr/bin/pullgate-agent", "/usr/bin/docker-credential-pullgate",
		"/usr/lib/systemd/system/pullgate-hub.service", "/usr/lib/systemd/system/pullgate-agent.service",
		"/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/pullgate-credential-provider"} {
		if pkgExists(p) {
			t.Errorf("%s left after dpkg -r", p)
		}
	}
	for _, p := range []string{"/etc/default/pullgate-hub", "/etc/default/pullgate-agent"} {
		if !pkgExists(p) {
			t.Errorf("dpkg -r removed the conffile %s", p)
		}
	}
	cmd := exec.Command("dpkg", "--purge", "pullgate-agent", "pullgate-hub")
	out2, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out2)
	}
	if !strings.Contains(string(out2), "kept /var/lib/pullgate") {
		t.Errorf("purge did not say it kept the hub's data:\n%s", out2)
	}
	for _, p := range slices.Concat(pkgHubFiles, pkgAgentFiles, []string{"/var/lib/pullgate-agent", "/etc/pullgate/join-token"}) {
		if pkgExists(p) {
			t.Errorf("%s left after purge", p)
		}
	}
	if !kubeletDirExisted && pkgExists("/usr/libexec/kubernetes") {
		t.Error("/usr/libexec/kubernetes left after purge")
	}
	// Documented leftovers: the data dir (it holds data) and the user.
	if !pkgExists("/var/lib/pullgate/master.key") {
		t.Error("purge deleted the hub's master key")
	}
	for _, pkg := range []string{"pullgate-hub", "pullgate-agent"} {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output(); strings.Contains(string(out), "installed") {
			t.Errorf("%s still %s", pkg, out)
		}
	}

	// An empty data dir goes with purge.
	os.RemoveAll("/var/lib/pullgate")
	pkgRun(t, "dpkg", "-i", hubDeb)
	pkgRun(t, "dpkg", "--purge", "pullgate-hub")
	if pkgExists("/var/lib/pullgate") {
		t.Error("purge left the empty /var/lib/pullgate")
	}

	t.Run("rpm", func(t *testing.T) { pkgCheckRPMs(t, dist) })
}

// pkgRunHubAsServiceUser starts /usr/bin/pullgate-hub as the pullgate user
// the way the unit does (ExecStart with PULLGATE_HUB_ARGS from
// /etc/default/pullgate-hub, ports moved to free ones) and waits for
// /readyz.
func pkgRunHubAsServiceUser(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("pullgate")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	def, err := os.ReadFile("/etc/default/pullgate-hub")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(def), `PULLGATE_HUB_ARGS="--listen 127.0.0.1:5080 --nats-listen 127.0.0.1:4222"`) {
		t.Errorf("packaged defaults changed:\n%s", def)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	cmd := exec.Command("/usr/bin/pullgate-hub", "serve", "--data", "/var/lib/pullgate", "--listen", addr, "--nats-listen", natsAddr,
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)))
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGKILL}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("hub as the pullgate user exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub as the pullgate user not ready:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range []string{"master.key", "admin.token", "pullgate.db"} {
		fi, err := os.Stat(filepath.Join("/var/lib/pullgate", f))
		if err != nil {
			t.Errorf("data dir: %v", err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(uid) {
			t.Errorf("%s owned by %d, want pullgate (%d)", f, st.Uid, uid)
		}
	}
}

// pkgCheckRPMs inspects the .rpm files with rpm(8) (Debian's rpm package,
// which .ci/run installs): metadata, file modes and owners, scripts.
func pkgCheckRPMs(t *testing.T, dist string) {
	if _, err := exec.LookPath("rpm"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rpm not installed: .ci/run installs it")
		}
		t.Skip("rpm not installed (apt-get install rpm)")
	}
	rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	for pkg, files := range map[string]map[string]string{
		"pullgate-hub": {
			"/usr/bin/pullgate-hub":                        "-rwxr-xr-x root root",
			"/usr/lib/systemd/system/pullgate-hub.service": "-rw-r--r-- root root",
			"/etc/default/pullgate-hub":                    "-rw------- root root",
		},
		"pullgate-agent": {
			"/usr/bin/pullgate-agent":               "-rwxr-xr-x root root",
			"/usr/bin/pullgate-credential-provider": "-rwxr-xr-x root root",
			"/usr/bin/docker-credential-pullgate":   "l root root",
			"/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/pullgate-credential-provider": "l root root",
			"/etc/default/pullgate-agent":                    "-rw------- root root",
			"/etc/pullgate/kubelet-credential-provider.yaml": "-rw-r--r-- root root",
			"/usr/lib/systemd/system/pullgate-agent.service": "-rw-r--r-- root root",
		},
	} {
		matches, _ := filepath.Glob(filepath.Join(dist, pkg+"-*."+rpmArch+".rpm"))
		if len(matches) != 1 {
			t.Fatalf("%s rpm: %v", pkg, matches)
		}
		rpmFile := matches[0]
		info := pkgRun(t, "rpm", "-qp", "--nosignature", "--queryformat", "%{NAME} %{VERSION} %{ARCH}\n", rpmFile)
		if !strings.HasPrefix(info, pkg+" 0.1.0~e2e "+rpmArch) {
			t.Errorf("%s: rpm metadata %q", pkg, info)
		}
		list := pkgRun(t, "rpm", "-qp", "--nosignature", "--queryformat",
			"[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]", rpmFile)
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
			f := strings.Fields(l)
			if len(f) == 4 {
				got[f[3]] = strings.Join(f[:3], " ")
			}
		}
		for path, want := range files {
			if strings.HasPrefix(want, "l ") && strings.HasPrefix(got[path], "l") {
				// nfpm writes symlinks without permission bits (unused on Linux).
				got[path] = "l" + got[path][strings.Index(got[path], " "):]
			}
			if got[path] != want {
				t.Errorf("%s: %s: %q, want %q", pkg, path, got[path], want)
			}
		}
		configs := pkgRun(t, "rpm", "-qcp", "--nosignature", rpmFile)
		if !strings.Contains(configs, "/etc/default/"+pkg) {
			t.Errorf("%s: config files %q", pkg, configs)
		}
		scripts := pkgRun(t, "rpm", "-qp", "--nosignature", "--scripts", rpmFile)
		for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
			if !strings.Contains(scripts, s) {
				t.Errorf("%s: no %s", pkg, s)
			}
		}
	}
}

// pkgCheckStatic: a static ELF for arch (no interpreter), so the same
// binary runs on any distribution and in a FROM-scratch image.
func pkgCheckStatic(t *testing.T, path, arch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s: machine %v, want %v", path, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked", path)
		}
	}
}

// TestImages: `make images` builds the hub and agent images for amd64 and
// arm64 from static binaries and pushes them to a registry (here a local
// one); pulled back, each platform carries binaries for its architecture,
// and the amd64 hub from the image serves.
func TestImages(t *testing.T) {
	reg := testupstream.StartInProcess(t)
	pkgMake(t, "images", "ARCHS=amd64 arm64", "REGISTRY="+reg.Host+"/pullgate")

	for _, c := range []struct {
		image    string
		binaries []string
	}{
		{"pullgate-hub", []string{"pullgate-hub"}},
		{"pullgate-agent", []string{"pullgate-agent", "pullgate-credential-provider", "pullgate-node-install"}},
	} {
		ref, err := name.ParseReference(reg.Host + "/pullgate/" + c.image + ":" + pkgVersion)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var arches []string
		for _, d := range im.Manifests {
			arches = append(arches, d.Platform.Architecture)
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != "65532:65532" || cf.Architecture != d.Platform.Architecture ||
				cf.Config.Labels["org.opencontainers.image.version"] != pkgVersion || cf.Config.Labels["org.opencontainers.image.revision"] == "" {
				t.Errorf("%s %s: config %+v", c.image, d.Platform.Architecture, cf.Config)
			}
			dir := t.TempDir()
			pkgExtract(t, img, "usr/local/bin/", dir)
			for _, b := range c.binaries {
				pkgCheckStatic(t, filepath.Join(dir, b), d.Platform.Architecture)
			}
			if c.image == "pullgate-hub" && d.Platform.Architecture == runtime.GOARCH {
				pkgServeFromImage(t, filepath.Join(dir, "pullgate-hub"), cf)
			}
		}
		if !slices.Equal(arches, []string{"amd64", "arm64"}) {
			t.Errorf("%s: platforms %v", c.image, arches)
		}
	}
}

func pkgExtract(t *testing.T, img v1.Image, prefix, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		rel, ok := strings.CutPrefix(h.Name, prefix)
		if !ok || rel == "" || h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// pkgServeFromImage runs the hub binary taken out of the image with the
// image's own command, its listen addresses moved to 127.0.0.1 and its
// data dir to a temporary one.
func pkgServeFromImage(t *testing.T, bin string, cf *v1.ConfigFile) {
	t.Helper()
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/pullgate-hub"}) || len(cf.Config.Cmd) == 0 || cf.Config.Cmd[0] != "serve" {
		t.Fatalf("hub image entrypoint %v cmd %v", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	var args []string
	for _, a := range cf.Config.Cmd {
		switch {
		case strings.HasPrefix(a, "--data="):
			a = "--data=" + t.TempDir()
		case strings.HasPrefix(a, "--listen="):
			a = "--listen=" + addr
		case strings.HasPrefix(a, "--nats-listen="):
			a = fmt.Sprintf("--nats-listen=127.0.0.1:%d", testupstream.FreePort(t))
		}
		args = append(args, a)
	}
	args = append(args, fmt.Sprintf("--metrics-listen=127.0.0.1:%d", testupstream.FreePort(t)))
	p := startProc(t, "hub from image", t.TempDir(), nil, bin, args...)
	waitHTTP(t, "http://"+addr+"/readyz", p)
	p.stop(t)
}
