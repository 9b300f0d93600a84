package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pullgate/pullgate/internal/testbuild"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/packaging/image"
)

// binDir lays out --bin-dir for a fast test: real amd64 builds of the two
// small commands (run below from the pulled image), shell-script stand-ins
// for the hub and the agent (the race-instrumented test process would
// spend a minute gzipping their real builds), and stand-ins for arm64.
// The e2e suite (e2e/package_test.go) builds and checks the real static
// binaries for both platforms.
func binDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	amd := filepath.Join(dir, "linux_amd64")
	for name, pkg := range map[string]string{
		"pullgate-credential-provider": "./helper/cmd/pullgate-credential-provider",
		"pullgate-node-install":        "./packaging/cmd/pullgate-node-install",
	} {
		if err := testbuild.Build(pkg, filepath.Join(amd, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pullgate-hub", "pullgate-agent"} {
		if err := os.WriteFile(filepath.Join(amd, name), []byte("#!/bin/sh\necho stand-in for "+name+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	arm := filepath.Join(dir, "linux_arm64")
	if err := os.MkdirAll(arm, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pullgate-hub", "pullgate-agent", "pullgate-credential-provider", "pullgate-node-install"} {
		if err := os.WriteFile(filepath.Join(arm, name), []byte("arm64 "+name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dockerConfig points the default keychain (what `make images` uses) at
// the test registry's credentials.
func dockerConfig(t *testing.T, reg *testupstream.Registry) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password)),
	}}}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

func TestBuildPushPull(t *testing.T) {
	reg := testupstream.StartInProcess(t, testupstream.WithBasicAuth("builder", "s3cret"))
	dockerConfig(t, reg)
	bins := binDir(t)
	layoutDir := t.TempDir()
	created := "2026-01-02T03:04:05Z"
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{
		"--bin-dir", bins, "--repository", reg.Host + "/pullgate", "--tag", "1.2.3,latest",
		"--version", "v1.2.3", "--revision", "0123abc", "--created", created, "--oci-layout", layoutDir,
	}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	t.Log(out.String())

	hostCA, _ := os.ReadFile(image.CACertsPath)
	for _, spec := range []image.Spec{image.Hub(), image.Agent()} {
		ref, err := name.ParseReference(reg.Host + "/pullgate/" + spec.Name + ":1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref, remote.WithAuth(reg.Auth()))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
			t.Errorf("%s: index media type %s", spec.Name, mt)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.Annotations["org.opencontainers.image.version"] != "1.2.3" || im.Annotations["org.opencontainers.image.title"] != spec.Name {
			t.Errorf("%s: index annotations %v", spec.Name, im.Annotations)
		}
		var plats []string
		for _, d := range im.Manifests {
			plats = append(plats, d.Platform.OS+"/"+d.Platform.Architecture)
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, spec, *d.Platform, img, hostCA, created)
		}
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: platforms %v", spec.Name, plats)
		}
		// Both tags name the same index; the layout holds it too.
		digest, _ := idx.Digest()
		latest, err := remote.Head(ref.Context().Tag("latest"), remote.WithAuth(reg.Auth()))
		if err != nil || latest.Digest != digest {
			t.Errorf("%s:latest: %v %v, want %s", spec.Name, latest, err, digest)
		}
		lp, err := layout.FromPath(filepath.Join(layoutDir, spec.Name))
		if err != nil {
			t.Fatal(err)
		}
		lidx, err := lp.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := lidx.IndexManifest()
		if len(lm.Manifests) != 1 || lm.Manifests[0].Digest != digest || lm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.2.3" {
			t.Errorf("%s: layout %+v, want %s", spec.Name, lm.Manifests, digest)
		}
	}
}

type file struct {
	hdr  *tar.Header
	data []byte
}

func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]file{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = file{h, data}
	}
}

func checkImage(t *testing.T, spec image.Spec, plat v1.Platform, img v1.Image, hostCA []byte, created string) {
	t.Helper()
	what := spec.Name + " " + plat.Architecture
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("%s: manifest media type %s", what, mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != plat.OS || cf.Architecture != plat.Architecture {
		t.Errorf("%s: config platform %s/%s", what, cf.OS, cf.Architecture)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, spec.Entrypoint) || !slices.Equal(c.Cmd, spec.Cmd) {
		t.Errorf("%s: entrypoint %v cmd %v", what, c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("%s: user %q, want the non-root 65532:65532", what, c.User)
	}
	for _, p := range spec.Ports {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("%s: port %s not exposed: %v", what, p, c.ExposedPorts)
		}
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title": spec.Name, "org.opencontainers.image.version": "1.2.3",
		"org.opencontainers.image.revision": "0123abc", "org.opencontainers.image.created": created,
		"org.opencontainers.image.source": "https://github.com/pullgate/pullgate",
	} {
		if c.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", what, k, c.Labels[k], v)
		}
	}
	if got := cf.Created.UTC().Format(time.RFC3339); got != created {
		t.Errorf("%s: created %s", what, got)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("%s: layer media type %s", what, mt)
		}
	}

	files := extract(t, img)
	if f := files["/etc/passwd"]; !strings.Contains(string(f.data), "nonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd %q", what, f.data)
	}
	if hostCA != nil && !bytes.Equal(files[image.CACertsPath].data, hostCA) {
		t.Errorf("%s: CA bundle differs from the build host's", what)
	}
	if f := files["/tmp"]; f.hdr == nil || f.hdr.Mode != 0o1777 {
		t.Errorf("%s: /tmp %+v", what, f.hdr)
	}
	for _, d := range spec.Dirs {
		if f := files[d]; f.hdr == nil || f.hdr.Uid != 65532 || f.hdr.Mode != 0o700 {
			t.Errorf("%s: %s %+v, want owned by 65532, 0700", what, d, f.hdr)
		}
	}
	for _, b := range spec.Binaries {
		f := files[image.BinDir+"/"+b]
		if f.hdr == nil || f.hdr.Mode != 0o755 || f.hdr.Uid != 0 || len(f.data) == 0 {
			t.Errorf("%s: %s %+v", what, b, f.hdr)
		}
	}
	for link, target := range spec.Symlinks {
		if f := files[image.BinDir+"/"+link]; f.hdr == nil || f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != target {
			t.Errorf("%s: symlink %s: %+v", what, link, f.hdr)
		}
	}
	if plat.Architecture != "amd64" {
		return
	}
	// The amd64 binaries, taken out of the pulled image, run.
	dir := t.TempDir()
	for _, b := range spec.Binaries {
		if err := os.WriteFile(filepath.Join(dir, b), files[image.BinDir+"/"+b].data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range spec.Symlinks {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want string, args ...string) {
		t.Helper()
		out, err := exec.Command(filepath.Join(dir, args[0]), args[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s: %v: %v\n%s", what, args, err, out)
		}
	}
	switch spec.Name {
	case "pullgate-hub":
		run("stand-in for pullgate-hub serve --help", "pullgate-hub", "serve", "--help")
	case "pullgate-agent":
		run("Usage: pullgate-node-install", "pullgate-node-install", "--help")
		// docker-credential-helper mode through the link: `version` needs no agent.
		run("", "docker-credential-pullgate", "version")
	}
}

func TestReproducible(t *testing.T) {
	bins := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		dir := filepath.Join(bins, "linux_"+arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pullgate-hub"), []byte("hub "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := func() v1.Hash {
		t.Helper()
		dir := t.TempDir()
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"--bin-dir", bins, "--image", "hub", "--oci-layout", dir, "--ca-certs", "", "--tag", "x"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		p, err := layout.FromPath(filepath.Join(dir, "pullgate-hub"))
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := p.ImageIndex()
		m, _ := idx.IndexManifest()
		return m.Manifests[0].Digest
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	a, b := build(), build()
	if a != b {
		t.Errorf("same inputs, different digests %s %s", a, b)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000001")
	if c := build(); c == a {
		t.Error("a different creation time gave the same digest")
	}
}

func TestBadArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--repository", "r"}, 2, "--bin-dir is required"},
		{[]string{"--bin-dir", "d"}, 2, "nothing to do"},
		{[]string{"--bin-dir", "d", "--oci-layout", "o", "--platform", "amd64"}, 2, "os/arch"},
		{[]string{"--bin-dir", "d", "--oci-layout", "o", "--image", "proxy"}, 2, "hub or agent"},
		{[]string{"--bin-dir", "d", "--oci-layout", "o", "--tag", "a b"}, 2, "--tag"},
		{[]string{"--bin-dir", t.TempDir(), "--oci-layout", t.TempDir(), "--image", "hub", "--ca-certs", ""}, 1, "no pullgate-hub binary"},
		{[]string{"--bin-dir", t.TempDir(), "--oci-layout", t.TempDir(), "--ca-certs", "/nonexistent/ca.crt"}, 1, "--ca-certs"},
	} {
		var out bytes.Buffer
		if code := Main(context.Background(), c.args, &out, &out); code != c.code || !strings.Contains(out.String(), c.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.msg, out.String())
		}
	}
}
