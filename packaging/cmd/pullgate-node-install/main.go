// Command pullgate-node-install puts the pullgate credential helper where
// the kubelet runs credential providers from, and writes (or merges into)
// the kubelet's CredentialProviderConfig. It is the init container of the
// agent DaemonSet (the agent image has no shell to do this with cp), with
// the host's directories mounted into it:
//
//	pullgate-node-install --bin-dir /host/bin --config /host/config/config.yaml \
//	    -- --match-image ghcr.io --match-image hub.example.com [--shared]
//
// The arguments after "--" go to `pullgate-agent kubelet-config`, which
// prints the config; pullgate's provider entry replaces an entry of the
// same name in an existing config file, and other providers are kept.
// Files are replaced atomically (rename), and left alone when unchanged.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pullgate/pullgate/internal/atomicfile"

	kubeletv1 "k8s.io/kubelet/config/v1"

	"github.com/pullgate/pullgate/agent/kubeletconfig"
	"github.com/pullgate/pullgate/internal/version"
)

// DockerHelperName is the docker-credential-helper name of the helper
// binary (it dispatches on argv[0]).
const DockerHelperName = "docker-credential-pullgate"

type options struct {
	helper     string   // the helper binary to install
	agent      string   // pullgate-agent, run as `kubelet-config`
	binDir     string   // the kubelet's --image-credential-provider-bin-dir
	pluginName string   // file name in binDir, the provider's name in the config
	dockerLink bool     // also link docker-credential-pullgate in binDir
	config     string   // the kubelet's --image-credential-provider-config; "" skips it
	inPlace    bool     // config is a bind-mounted file: rewrite it, do not rename over it
	args       []string // for `pullgate-agent kubelet-config`
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the installer with the command line args; it returns the exit
// code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(stdout, version.String("pullgate-node-install"))
		return 0
	}
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "pullgate-node-install:", err)
		return 2
	}
	if err := install(o, stdout); err != nil {
		fmt.Fprintln(stderr, "pullgate-node-install:", err)
		return 1
	}
	return 0
}

func parse(args []string, stderr io.Writer) (options, error) {
	self, _ := os.Executable()
	dir := filepath.Dir(self)
	var o options
	fs := flag.NewFlagSet("pullgate-node-install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.helper, "helper", filepath.Join(dir, kubeletconfig.PluginName), "the credential helper binary to install")
	fs.StringVar(&o.agent, "agent", filepath.Join(dir, "pullgate-agent"), "the pullgate-agent binary (run as: pullgate-agent kubelet-config)")
	fs.StringVar(&o.binDir, "bin-dir", "", "the kubelet's credential provider bin dir (--image-credential-provider-bin-dir), as mounted here")
	fs.StringVar(&o.pluginName, "plugin-name", kubeletconfig.PluginName, "the helper's file name in --bin-dir and its provider name in the config")
	fs.BoolVar(&o.dockerLink, "docker-credential-link", true, "also link "+DockerHelperName+" to the helper in --bin-dir")
	fs.StringVar(&o.config, "config", "", "the kubelet's CredentialProviderConfig file (--image-credential-provider-config), as mounted here; empty: do not write it")
	fs.BoolVar(&o.inPlace, "config-in-place", false, "--config is a file mounted on its own (hostPath type File): rewrite it in place instead of renaming a new file over it")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: pullgate-node-install --bin-dir DIR [--config FILE] [flags] [-- kubelet-config flags]
       pullgate-node-install --version

Installs pullgate-credential-provider into the kubelet's credential provider
bin dir and writes pullgate's entry into the kubelet's CredentialProviderConfig
(flags after -- go to "pullgate-agent kubelet-config"). The kubelet reads that
config only when it starts: restart it once after the first install.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.args = fs.Args()
	if o.binDir == "" {
		return o, errors.New("--bin-dir is required")
	}
	if !filepath.IsAbs(o.binDir) || (o.config != "" && !filepath.IsAbs(o.config)) {
		return o, errors.New("--bin-dir and --config must be absolute paths")
	}
	if o.pluginName == "" || strings.ContainsAny(o.pluginName, "/ \t") || o.pluginName == DockerHelperName {
		return o, fmt.Errorf("--plugin-name %q: want a plain file name other than %s", o.pluginName, DockerHelperName)
	}
	for _, a := range o.args {
		if a == "--plugin-name" || strings.HasPrefix(a, "--plugin-name=") {
			return o, errors.New("set --plugin-name before --, not in the kubelet-config flags")
		}
	}
	return o, nil
}

func install(o options, stdout io.Writer) error {
	if err := os.MkdirAll(o.binDir, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(o.binDir, o.pluginName)
	changed, err := installFile(o.helper, dst)
	if err != nil {
		return fmt.Errorf("install helper: %w", err)
	}
	report(stdout, dst, changed)
	if o.dockerLink {
		link := filepath.Join(o.binDir, DockerHelperName)
		changed, err := installSymlink(o.pluginName, link)
		if err != nil {
			return fmt.Errorf("link %s: %w", DockerHelperName, err)
		}
		report(stdout, link+" -> "+o.pluginName, changed)
	}
	if o.config == "" {
		return nil
	}
	provider, err := renderProvider(o)
	if err != nil {
		return err
	}
	changed, err = mergeConfig(o.config, provider, o.inPlace)
	if err != nil {
		return err
	}
	report(stdout, o.config, changed)
	if changed {
		fmt.Fprintln(stdout, "the kubelet reads its credential provider config only when it starts: restart it once "+
			"(kubelet --image-credential-provider-config="+o.config+" --image-credential-provider-bin-dir="+o.binDir+", as seen on the host)")
	}
	return nil
}

func report(w io.Writer, what string, changed bool) {
	if changed {
		fmt.Fprintln(w, "installed", what)
	} else {
		fmt.Fprintln(w, "unchanged", what)
	}
}

// renderProvider runs `pullgate-agent kubelet-config` and returns the one
// provider entry it prints.
func renderProvider(o options) (kubeletv1.CredentialProvider, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"kubelet-config", "--plugin-name", o.pluginName}, o.args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.agent, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return kubeletv1.CredentialProvider{}, fmt.Errorf("%s %s: %v: %s", o.agent, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	cfg, err := kubeletconfig.Parse(stdout.Bytes())
	if err != nil {
		return kubeletv1.CredentialProvider{}, err
	}
	if len(cfg.Providers) != 1 || cfg.Providers[0].Name != o.pluginName {
		return kubeletv1.CredentialProvider{}, fmt.Errorf("pullgate-agent kubelet-config printed %d providers, want one named %s", len(cfg.Providers), o.pluginName)
	}
	return cfg.Providers[0], nil
}

// mergeConfig writes p into the CredentialProviderConfig at path: it
// replaces the provider of the same name, or is appended; everything else
// in an existing file is kept. An existing file that is not a valid
// kubelet.config.k8s.io/v1 CredentialProviderConfig is left alone and
// reported, never overwritten.
func mergeConfig(path string, p kubeletv1.CredentialProvider, inPlace bool) (bool, error) {
	cfg := kubeletv1.CredentialProviderConfig{}
	cfg.APIVersion, cfg.Kind = kubeletconfig.ConfigAPIVersion, kubeletconfig.ConfigKind
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(bytes.TrimSpace(old)) == 0):
	case err != nil:
		return false, err
	default:
		if cfg, err = kubeletconfig.Parse(old); err != nil {
			return false, fmt.Errorf("existing %s (left as it is; fix or move it): %w", path, err)
		}
		if cfg.APIVersion != kubeletconfig.ConfigAPIVersion || cfg.Kind != kubeletconfig.ConfigKind {
			return false, fmt.Errorf("existing %s is %s %s, want %s %s (left as it is; convert or move it)",
				path, cfg.APIVersion, cfg.Kind, kubeletconfig.ConfigAPIVersion, kubeletconfig.ConfigKind)
		}
	}
	replaced := false
	for i := range cfg.Providers {
		if cfg.Providers[i].Name == p.Name {
			cfg.Providers[i], replaced = p, true
		}
	}
	if !replaced {
		cfg.Providers = append(cfg.Providers, p)
	}
	data, err := kubeletconfig.Marshal(cfg)
	if err != nil {
		return false, err
	}
	if bytes.Equal(data, old) {
		return false, nil
	}
	if inPlace {
		return true, writeInPlace(path, data)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.Write(path, bytes.NewReader(data), 0o644)
}

// writeInPlace rewrites a file that is a mount point of its own, which a
// rename cannot replace (EBUSY). The kubelet reads it only when it starts.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// installFile copies src to dst (mode 0755) unless dst already has the
// same content. The copy goes to a temporary file next to dst that is
// renamed over it, so a kubelet exec'ing dst never sees a partial file and
// a running helper never makes the write fail (ETXTBSY).
func installFile(src, dst string) (bool, error) {
	want, err := fileSum(src)
	if err != nil {
		return false, err
	}
	if have, err := fileSum(dst); err == nil && have == want {
		if fi, err := os.Stat(dst); err == nil && fi.Mode().Perm() == 0o755 {
			return false, nil
		}
	}
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return true, atomicfile.Write(dst, f, 0o755)
}

func fileSum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// installSymlink makes link point at target (relative), replacing what is
// there atomically.
func installSymlink(target, link string) (bool, error) {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return false, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}
