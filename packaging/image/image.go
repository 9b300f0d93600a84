// Package image assembles pullgate's OCI images without a container
// engine: FROM scratch, a base layer (passwd/group with the non-root user,
// CA certificates, /tmp) and a layer with the static binaries, one image
// per platform under an OCI image index.
package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The unprivileged user images run as by default (distroless's "nonroot").
const (
	NonRootUID  = 65532
	NonRootName = "nonroot"
	// BinDir holds the binaries in the image.
	BinDir = "/usr/local/bin"
	// CACertsPath is where Go (and most TLS stacks) look for CA certificates.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// Spec describes one image (the same for every platform).
type Spec struct {
	// Name is the image's name below the repository, e.g. "pullgate-hub".
	Name string
	// Binaries are file names in BinDir, one per platform build.
	Binaries []string
	// Symlinks in BinDir: link name -> target (relative).
	Symlinks map[string]string
	// Dirs are created owned by the non-root user (mode 0700), e.g. a data
	// dir that works without a volume.
	Dirs        []string
	Entrypoint  []string
	Cmd         []string
	User        string
	WorkingDir  string
	Env         []string
	Ports       []string // "5080/tcp"
	Labels      map[string]string
	Description string
}

// Hub and Agent are pullgate's two images.
func Hub() Spec {
	return Spec{
		Name:        "pullgate-hub",
		Binaries:    []string{"pullgate-hub"},
		Dirs:        []string{"/var/lib/pullgate"},
		Entrypoint:  []string{BinDir + "/pullgate-hub"},
		Cmd:         []string{"serve", "--data=/var/lib/pullgate", "--listen=0.0.0.0:5080", "--nats-listen=0.0.0.0:4222"},
		User:        fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		WorkingDir:  "/var/lib/pullgate",
		Ports:       []string{"5080/tcp", "4222/tcp"},
		Description: "pullgate hub: registry credential vault, authenticating pull proxy and token service",
	}
}

func Agent() Spec {
	return Spec{
		Name:       "pullgate-agent",
		Binaries:   []string{"pullgate-agent", "pullgate-credential-provider", "pullgate-node-install"},
		Symlinks:   map[string]string{"docker-credential-pullgate": "pullgate-credential-provider"},
		Entrypoint: []string{BinDir + "/pullgate-agent"},
		Cmd:        []string{"run"},
		// The DaemonSet runs it as root (it owns host paths); the image's
		// default is the unprivileged user.
		User:        fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		WorkingDir:  "/",
		Ports:       []string{"9464/tcp"},
		Description: "pullgate node agent, kubelet credential provider and its installer",
	}
}

// Options are the per-build inputs.
type Options struct {
	// CACerts is the CA bundle to ship (the build host's); nil ships none.
	CACerts []byte
	// Created is the image creation time and every file's mtime; the same
	// inputs and time give the same digests.
	Created time.Time
	// Labels are added to (and override) the spec's labels.
	Labels map[string]string
}

// Platform is one platform's binaries: file name -> path on this machine.
type Platform struct {
	Platform v1.Platform
	Files    map[string]string
}

// Index builds spec for every platform.
func Index(spec Spec, platforms []Platform, opts Options) (v1.ImageIndex, error) {
	if len(platforms) == 0 {
		return nil, fmt.Errorf("%s: no platforms", spec.Name)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, err := Image(spec, p, opts)
		if err != nil {
			return nil, err
		}
		plat := p.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	anns := labels(spec, opts)
	if out, ok := mutate.Annotations(idx, anns).(v1.ImageIndex); ok {
		return out, nil
	}
	return nil, fmt.Errorf("annotating the %s index", spec.Name)
}

func labels(spec Spec, opts Options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       spec.Name,
		"org.opencontainers.image.description": spec.Description,
		"org.opencontainers.image.created":     opts.Created.UTC().Format(time.RFC3339),
	}
	for k, v := range spec.Labels {
		l[k] = v
	}
	for k, v := range opts.Labels {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// Image builds spec for one platform.
func Image(spec Spec, p Platform, opts Options) (v1.Image, error) {
	created := opts.Created.UTC().Truncate(time.Second)
	base, err := baseLayer(spec, opts.CACerts, created)
	if err != nil {
		return nil, err
	}
	bins, err := binaryLayer(spec, p, created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "pullgate-image: passwd, group, CA certificates, /tmp"}},
		mutate.Addendum{Layer: bins, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "pullgate-image: " + strings.Join(spec.Binaries, ", ")}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.Platform.OS, p.Platform.Architecture, p.Platform.Variant, p.Platform.OSVersion
	cf.Created = v1.Time{Time: created}
	env := []string{"PATH=" + BinDir + ":/usr/bin:/bin"}
	if opts.CACerts != nil {
		env = append(env, "SSL_CERT_FILE="+CACertsPath)
	}
	ports := map[string]struct{}{}
	for _, port := range spec.Ports {
		ports[port] = struct{}{}
	}
	cf.Config = v1.Config{
		Entrypoint:   spec.Entrypoint,
		Cmd:          spec.Cmd,
		User:         spec.User,
		WorkingDir:   spec.WorkingDir,
		Env:          append(env, spec.Env...),
		ExposedPorts: ports,
		Labels:       labels(spec, opts),
	}
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func baseLayer(spec Spec, caCerts []byte, mtime time.Time) (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", NonRootName, NonRootUID, NonRootUID, NonRootName, NonRootName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", NonRootName, NonRootUID)
	es := []entry{
		dirEntry("etc/", 0o755, 0),
		fileEntry("etc/passwd", 0o644, []byte(passwd)),
		fileEntry("etc/group", 0o644, []byte(group)),
		// Go's resolver: /etc/hosts first, then DNS.
		fileEntry("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")),
		dirEntry("home/", 0o755, 0),
		dirEntry("home/"+NonRootName+"/", 0o700, NonRootUID),
		dirEntry("root/", 0o700, 0),
		dirEntry("tmp/", 0o1777, 0),
	}
	if caCerts != nil {
		es = append(es, dirEntry("etc/ssl/", 0o755, 0), dirEntry("etc/ssl/certs/", 0o755, 0),
			fileEntry(strings.TrimPrefix(CACertsPath, "/"), 0o644, caCerts))
	}
	for _, d := range spec.Dirs {
		d = strings.Trim(path.Clean(d), "/")
		for _, parent := range parents(d) {
			es = append(es, dirEntry(parent+"/", 0o755, 0))
		}
		es = append(es, dirEntry(d+"/", 0o700, NonRootUID))
	}
	return layer(es, mtime)
}

func binaryLayer(spec Spec, p Platform, mtime time.Time) (v1.Layer, error) {
	dir := strings.Trim(BinDir, "/")
	var es []entry
	for _, parent := range parents(dir) {
		es = append(es, dirEntry(parent+"/", 0o755, 0))
	}
	es = append(es, dirEntry(dir+"/", 0o755, 0))
	for _, name := range spec.Binaries {
		src, ok := p.Files[name]
		if !ok {
			return nil, fmt.Errorf("%s %s: no %s binary", spec.Name, platformString(p.Platform), name)
		}
		data, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: no %s binary at %s", spec.Name, platformString(p.Platform), name, src)
		}
		if err != nil {
			return nil, err
		}
		es = append(es, fileEntry(dir+"/"+name, 0o755, data))
	}
	for link, target := range spec.Symlinks {
		es = append(es, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: dir + "/" + link, Linkname: target, Mode: 0o777}})
	}
	return layer(es, mtime)
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parents lists "a", "a/b" for "a/b/c".
func parents(p string) []string {
	parts := strings.Split(p, "/")
	var out []string
	for i := 1; i < len(parts); i++ {
		out = append(out, strings.Join(parts[:i], "/"))
	}
	return out
}

func dirEntry(name string, mode int64, uid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid}}
}

func fileEntry(name string, mode int64, data []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data}
}

// layer writes the entries as a reproducible tar: sorted, duplicates
// dropped, fixed times and owners.
func layer(es []entry, mtime time.Time) (v1.Layer, error) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].hdr.Name < es[j].hdr.Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.hdr.Name] {
			continue
		}
		seen[e.hdr.Name] = true
		h := e.hdr
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if h.Uid == 0 {
			h.Uname, h.Gname = "root", "root"
		} else {
			h.Uname, h.Gname = NonRootName, NonRootName
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
