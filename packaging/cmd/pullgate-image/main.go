// Command pullgate-image builds pullgate's OCI images (hub, agent) for
// several platforms from prebuilt static binaries, without a container
// engine, and pushes them to a registry as multi-platform indexes and/or
// writes them to an OCI image layout.
//
//	make images REGISTRY=registry.example.com/pullgate
//
// runs, after building the binaries into dist/bin/<os>_<arch>/:
//
//	pullgate-image --bin-dir dist/bin --repository registry.example.com/pullgate --tag 0.1.0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/packaging/image"
)

type options struct {
	binDir     string
	platforms  []v1.Platform
	images     []image.Spec
	repository string
	tags       []string
	ociLayout  string
	insecure   bool
	caCerts    string
	caExplicit bool
	created    time.Time
	labels     map[string]string
}

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command; it returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "pullgate-image:", err)
		return 2
	}
	if err := run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "pullgate-image:", err)
		return 1
	}
	return 0
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var platforms, images, tags listFlag
	var created, version, revision, source string
	fs := flag.NewFlagSet("pullgate-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binDir, "bin-dir", "", "directory with the static binaries as <os>_<arch>[_<variant>]/<name> (required)")
	fs.Var(&platforms, "platform", "platforms to build, comma-separated or repeated (default linux/amd64,linux/arm64)")
	fs.Var(&images, "image", "images to build: hub, agent (default both)")
	fs.StringVar(&o.repository, "repository", "", "push to REPOSITORY/pullgate-hub and REPOSITORY/pullgate-agent, e.g. registry.example.com/pullgate")
	fs.Var(&tags, "tag", "tags to push, comma-separated or repeated (default: --version, else latest)")
	fs.StringVar(&o.ociLayout, "oci-layout", "", "also write each image index to an OCI image layout DIR/<image name>")
	fs.BoolVar(&o.insecure, "insecure", false, "allow a plain-HTTP registry (localhost and private addresses are allowed anyway)")
	fs.StringVar(&o.caCerts, "ca-certs", image.CACertsPath, "CA bundle to ship in the images; empty ships none")
	fs.StringVar(&created, "created", "", "creation time, RFC 3339 (default: $SOURCE_DATE_EPOCH, else now)")
	fs.StringVar(&version, "version", "", "org.opencontainers.image.version")
	fs.StringVar(&revision, "revision", "", "org.opencontainers.image.revision (the git commit)")
	fs.StringVar(&source, "source", "https://github.com/pullgate/pullgate", "org.opencontainers.image.source")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pullgate-image --bin-dir DIR (--repository REPO | --oci-layout DIR) [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ca-certs" {
			o.caExplicit = true
		}
	})
	if o.binDir == "" {
		return o, errors.New("--bin-dir is required")
	}
	if o.repository == "" && o.ociLayout == "" {
		return o, errors.New("nothing to do: give --repository and/or --oci-layout")
	}
	if len(platforms) == 0 {
		platforms = listFlag{"linux/amd64", "linux/arm64"}
	}
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil || plat.OS == "" || plat.Architecture == "" {
			return o, fmt.Errorf("--platform %q: want os/arch[/variant]", p)
		}
		o.platforms = append(o.platforms, *plat)
	}
	if len(images) == 0 {
		images = listFlag{"hub", "agent"}
	}
	for _, i := range images {
		switch i {
		case "hub":
			o.images = append(o.images, image.Hub())
		case "agent":
			o.images = append(o.images, image.Agent())
		default:
			return o, fmt.Errorf("--image %q: want hub or agent", i)
		}
	}
	o.tags = tags
	if len(o.tags) == 0 {
		o.tags = []string{strings.TrimPrefix(version, "v")}
		if version == "" {
			o.tags = []string{"latest"}
		}
	}
	for _, t := range o.tags {
		if _, err := name.NewTag("example.com/x:" + t); err != nil {
			return o, fmt.Errorf("--tag %q: %v", t, err)
		}
	}
	switch {
	case created != "":
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return o, fmt.Errorf("--created: %v", err)
		}
		o.created = t
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
		if err != nil {
			return o, fmt.Errorf("SOURCE_DATE_EPOCH: %v", err)
		}
		o.created = time.Unix(sec, 0)
	default:
		o.created = time.Now()
	}
	o.labels = map[string]string{
		"org.opencontainers.image.version":  strings.TrimPrefix(version, "v"),
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.source":   source,
		"org.opencontainers.image.url":      source,
		"org.opencontainers.image.vendor":   "pullgate",
	}
	return o, nil
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	opts := image.Options{Created: o.created, Labels: o.labels}
	if o.caCerts != "" {
		data, err := os.ReadFile(o.caCerts)
		switch {
		case err == nil:
			opts.CACerts = data
		case errors.Is(err, os.ErrNotExist) && !o.caExplicit:
			fmt.Fprintf(stderr, "pullgate-image: warning: %s not found, the images carry no CA certificates (the hub cannot verify upstream registries)\n", o.caCerts)
		default:
			return fmt.Errorf("--ca-certs: %w", err)
		}
	}
	for _, spec := range o.images {
		var plats []image.Platform
		for _, p := range o.platforms {
			dir := filepath.Join(o.binDir, platformDir(p))
			files := map[string]string{}
			for _, b := range spec.Binaries {
				files[b] = filepath.Join(dir, b)
			}
			plats = append(plats, image.Platform{Platform: p, Files: files})
		}
		idx, err := image.Index(spec, plats, opts)
		if err != nil {
			return err
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		if o.ociLayout != "" {
			dir := filepath.Join(o.ociLayout, spec.Name)
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				return err
			}
			if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.tags[0]})); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s (%s) to %s\n", spec.Name, digest, dir)
		}
		if o.repository == "" {
			continue
		}
		var nameOpts []name.Option
		if o.insecure {
			nameOpts = append(nameOpts, name.Insecure)
		}
		first, err := name.NewTag(o.repository+"/"+spec.Name+":"+o.tags[0], nameOpts...)
		if err != nil {
			return fmt.Errorf("--repository %q: %v", o.repository, err)
		}
		ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
		if err := remote.WriteIndex(first, idx, ropts...); err != nil {
			return fmt.Errorf("push %s: %w", first, err)
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", first, digest)
		for _, t := range o.tags[1:] {
			tag := first.Context().Tag(t)
			if err := remote.Tag(tag, idx, ropts...); err != nil {
				return fmt.Errorf("tag %s: %w", tag, err)
			}
			fmt.Fprintf(stdout, "tagged %s\n", tag)
		}
	}
	return nil
}

// platformDir is where --bin-dir keeps a platform's binaries: linux_amd64,
// linux_arm_v7 (what the Makefile writes).
func platformDir(p v1.Platform) string {
	d := p.OS + "_" + p.Architecture
	if p.Variant != "" {
		d += "_" + p.Variant
	}
	return d
}
