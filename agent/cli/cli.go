// Package cli is pullgate-agent's command line: `run` (the node agent),
// `kubelet-config` (print the kubelet's CredentialProviderConfig) and
// `akash` (the Akash provider's binding controller).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/containerd"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/imageprune"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/agent/jwks"
	"github.com/pullgate/pullgate/agent/kubeletconfig"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Environment variables read when the matching flag is not given.
const (
	EnvNATSURL       = "PULLGATE_NATS_URL"
	EnvNATSCA        = "PULLGATE_NATS_CA"
	EnvInsecureNATS  = "PULLGATE_INSECURE_NATS"
	EnvJoinToken     = "PULLGATE_JOIN_TOKEN"
	EnvJoinTokenFile = "PULLGATE_JOIN_TOKEN_FILE"
	EnvStateDir      = "PULLGATE_STATE_DIR"
	EnvSocket        = "PULLGATE_SOCKET"
	EnvMetricsListen = "PULLGATE_METRICS_LISTEN"
	EnvNodeName      = "PULLGATE_NODE_NAME"
	EnvLogLevel      = "PULLGATE_LOG_LEVEL"
	EnvSAJWKS        = "PULLGATE_SA_JWKS"
	// containerd mirrors (hosts.toml)
	EnvContainerdConfigPath = "PULLGATE_CONTAINERD_CONFIG_PATH"
	EnvHubURL               = "PULLGATE_HUB_URL"
	EnvHubCA                = "PULLGATE_HUB_CA"
	EnvMirrorHosts          = "PULLGATE_MIRROR_HOSTS"
	EnvExternalMirrorHosts  = "PULLGATE_EXTERNAL_MIRROR_HOSTS"
	EnvRemoveRevokedImages  = "PULLGATE_REMOVE_REVOKED_IMAGES"
	EnvCRIEndpoint          = "PULLGATE_CRI_ENDPOINT"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Env looks up an environment variable.
type Env func(string) (string, bool)

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, env Env) int {
	root := NewRoot(stdout, stderr, env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "pullgate-agent:", err)
		var ue usageError
		if errors.As(err, &ue) || isCobraUsage(err) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "bad flag syntax", "accepts ", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// NewRoot returns the pullgate-agent command.
func NewRoot(stdout, stderr io.Writer, env Env) *cobra.Command {
	if env == nil {
		env = os.LookupEnv
	}
	root := &cobra.Command{
		Use:   "pullgate-agent",
		Short: "pullgate node agent: install tokens for the kubelet and container runtimes, from the hub over NATS",
		Long: `pullgate-agent runs on every node. It enrols the node with the pullgate hub
(join token → the node's own identity), keeps a NATS connection to the hub,
caches short-lived install tokens and hands them to pullgate-credential-provider
(run by the kubelet, or by containerd/CRI-O tooling as docker-credential-pullgate)
over a unix socket. Tokens revoked at the hub are dropped at once.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = version.Version()
	root.SetVersionTemplate(version.String("pullgate-agent") + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(runCommand(stderr, env), kubeletConfigCommand(stdout, env), akashCommand(stderr, env))
	return root
}

type flagSet interface {
	Changed(name string) bool
	Set(name, value string) error
}

// bindEnv sets flags that were not given from their environment variables.
func bindEnv(fs flagSet, env Env, pairs map[string]string) error {
	for name, key := range pairs {
		if fs.Changed(name) {
			continue
		}
		if v, ok := env(key); ok && v != "" {
			if err := fs.Set(name, v); err != nil {
				return usageError{fmt.Errorf("%s: %w", key, err)}
			}
		}
	}
	return nil
}

func runCommand(stderr io.Writer, env Env) *cobra.Command {
	var (
		natsURL, joinToken, joinTokenFile, stateDir, socket, metricsListen, nodeName string
		logLevel, logFormat, saJWKS                                                  string
		containerdConfigPath, hubURL, hubCA                                          string
		mirrorHosts, externalMirrors                                                 []string
		mirrorGrace                                                                  time.Duration
		natsCA                                                                       string
		insecureNATS, removeRevoked                                                  bool
		criEndpoint                                                                  string
	)
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node agent",
		Long: `Run the node agent until SIGTERM/SIGINT.

On first start the agent enrols with the join token and stores the node's own
identity in the state dir (identity.json, mode 0600); later starts use that
identity and need no join token. If the hub revokes the node, the agent purges
its cache, serves nothing and reports not ready; it never re-enrols on its own.
Delete the identity file and restart to enrol again.

The hub's NATS carries the join token, the node secret, pods' service-account
tokens and install tokens: use tls://HOST:4222 with --nats-ca (the CA of the
hub's NATS certificate; default: the system roots). A nats:// URL is plain
text and refused for any host but loopback unless --insecure-nats is given.

Every flag can also be set through its environment variable (the flag wins).
Prefer --join-token-file or PULLGATE_JOIN_TOKEN over --join-token: command
lines are visible to every user of the node.

With --containerd-config-path (containerd's registry config_path, e.g.
/etc/containerd/certs.d) the agent writes <path>/<upstream-host>/hosts.toml
for every upstream host its cluster's installs use, naming the hub
(--hub-url) as containerd's only host for it: images keep their upstream
names and are pulled through the hub, with no fallback to the upstream. The
files are rewritten when installs change, removed when no install uses the
host, and restored if edited by hand; an operator's own hosts.toml (without
the "managed by pullgate-agent" header) is never touched. A mirror is
node-wide (public images of that host go to the hub too): on a shared
(multi-workspace) cluster only the hosts given with --mirror-host are
mirrored; elsewhere --mirror-host narrows the set.

The helper gets a token for an image named by its upstream host
(registry.corp/org/app) only when the node routes that host to the hub:
a hosts.toml the agent keeps, or a host named with --external-mirror-host
(a mirror the operator keeps, e.g. an own hosts.toml naming the hub as the
only host). Name a host there only if the runtime never falls back to the
upstream: registries.conf [[registry.mirror]] entries (CRI-O, podman) do
fall back, and the token would reach the upstream. For any other host the
runtime would send the token to the upstream, so the helper returns no
credentials. Path-prefix images (HUB/registry.corp/org/app)
always work.

With --remove-revoked-images the agent also removes, through the runtime's
CRI image service (--cri-endpoint), the images this node pulled only for
installs the hub has since revoked (install disable or delete, registry
disable, workspace delete, node revoke): otherwise a container restart or a
pod with imagePullPolicy IfNotPresent runs them from the node's image store
without asking for credentials. Images that a live install was also served
for stay. The record of which install each image was pulled for is kept in
the state dir (served-images.json). Pair it with the kubelet's
imagePullCredentialsVerificationPolicy: AlwaysVerify (KEP-2535), which makes
the kubelet check a pod's credentials before it uses a cached image.`,
		Example: `  # DaemonSet: join token from a Secret volume (re-read when the Secret changes)
  pullgate-agent run --nats-url tls://hub.example.com:4222 --nats-ca /etc/pullgate/nats-ca/ca.crt \
    --join-token-file /etc/pullgate/join/token --node-name "$NODE_NAME"

  # systemd: everything from the environment
  PULLGATE_NATS_URL=tls://hub.example.com:4222 PULLGATE_JOIN_TOKEN=pgj1.… pullgate-agent run

  # containerd: pull registry.corp/... images through the hub
  pullgate-agent run --nats-url tls://hub.example.com:4222 --join-token-file /etc/pullgate/join/token \
    --containerd-config-path /etc/containerd/certs.d --hub-url https://hub.example.com

  # health and metrics
  curl -s 127.0.0.1:9464/readyz; curl -s 127.0.0.1:9464/metrics | grep pullgate_agent_`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags(), env, map[string]string{
				"nats-url": EnvNATSURL, "nats-ca": EnvNATSCA, "insecure-nats": EnvInsecureNATS, "join-token": EnvJoinToken, "join-token-file": EnvJoinTokenFile,
				"state-dir": EnvStateDir, "socket": EnvSocket, "metrics-listen": EnvMetricsListen,
				"node-name": EnvNodeName, "log-level": EnvLogLevel, "sa-jwks": EnvSAJWKS,
				"containerd-config-path": EnvContainerdConfigPath, "hub-url": EnvHubURL, "hub-ca": EnvHubCA,
				"mirror-host": EnvMirrorHosts, "external-mirror-host": EnvExternalMirrorHosts,
				"remove-revoked-images": EnvRemoveRevokedImages, "cri-endpoint": EnvCRIEndpoint,
			}); err != nil {
				return err
			}
			log, err := newLogger(stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			if joinToken != "" && joinTokenFile != "" {
				return usageError{errors.New("give either --join-token or --join-token-file, not both")}
			}
			if containerdConfigPath == "" && (hubURL != "" || hubCA != "" || len(mirrorHosts) > 0) {
				return usageError{errors.New("--hub-url, --hub-ca and --mirror-host configure containerd mirrors: give --containerd-config-path too")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			var src jointoken.Source
			switch {
			case joinTokenFile != "":
				f, err := jointoken.WatchFile(ctx, joinTokenFile, jointoken.WithLogger(log))
				if err != nil {
					return err
				}
				src = f
			case joinToken != "":
				src = jointoken.Static(joinToken)
			}
			opts := []agent.Option{
				agent.WithNATSURL(natsURL), agent.WithStateDir(stateDir), agent.WithSocket(socket),
				agent.WithMetricsListen(metricsListen), agent.WithNodeName(nodeName), agent.WithLogger(log),
				agent.WithHubOptions(hubclient.WithCA(natsCA), hubclient.WithInsecurePlaintext(insecureNATS)),
			}
			if src != nil {
				opts = append(opts, agent.WithJoinToken(src))
			}
			if len(externalMirrors) > 0 {
				opts = append(opts, agent.WithExternalMirrors(externalMirrors...))
			}
			if containerdConfigPath != "" {
				opts = append(opts, agent.WithContainerdMirrors(agent.MirrorConfig{
					ConfigPath: containerdConfigPath, HubURL: hubURL, HubCA: hubCA, Hosts: mirrorHosts, RemoveGrace: &mirrorGrace}))
			}
			if removeRevoked {
				cri, err := imageprune.DialCRI(criEndpoint)
				if err != nil {
					return usageError{fmt.Errorf("--cri-endpoint: %w", err)}
				}
				defer cri.Close()
				opts = append(opts, agent.WithRemoveRevokedImages(cri))
			} else if cmd.Flags().Changed("cri-endpoint") {
				return usageError{errors.New("--cri-endpoint is used by --remove-revoked-images: give that too")}
			}
			switch saJWKS {
			case "off", "":
			case "auto":
				keys, iss, err := jwks.InCluster(os.Getenv)
				switch {
				case err == nil:
					opts = append(opts, agent.WithJWKS(keys), agent.WithSAIssuer(iss))
				case !errors.Is(err, jwks.ErrNotInCluster):
					log.Warn("not offering the cluster's service-account keys to the hub", "err", err)
				}
			default:
				opts = append(opts, agent.WithJWKS(jwks.File(saJWKS)))
			}
			a, err := agent.New(opts...)
			if err != nil {
				return usageError{err}
			}
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats-url", "", "the hub's NATS URL, e.g. tls://hub.example.com:4222; nats:// (plain text) only to loopback unless --insecure-nats ("+EnvNATSURL+")")
	f.StringVar(&natsCA, "nats-ca", "", "CA certificate file (PEM) for the hub's NATS certificate; default: the system roots ("+EnvNATSCA+")")
	f.BoolVar(&insecureNATS, "insecure-nats", false, "allow a nats:// (plain-text) URL to a non-loopback host: join token, node secret and tokens cross the network in clear text ("+EnvInsecureNATS+")")
	f.StringVar(&joinToken, "join-token", "", "cluster join token pgj1.… ("+EnvJoinToken+"); needed only until the node has enrolled")
	f.StringVar(&joinTokenFile, "join-token-file", "", "file holding the join token, watched for changes; may be a Kubernetes Secret volume ("+EnvJoinTokenFile+")")
	f.StringVar(&stateDir, "state-dir", agent.DefaultStateDir, "directory for the node identity, mode 0700 ("+EnvStateDir+")")
	f.StringVar(&socket, "socket", wire.DefaultSocket, "unix socket for the credential helper, mode 0600 ("+EnvSocket+")")
	f.StringVar(&metricsListen, "metrics-listen", agent.DefaultMetricsListen, "address for /metrics, /healthz and /readyz; empty disables ("+EnvMetricsListen+")")
	f.StringVar(&nodeName, "node-name", host, "this node's name, sent on enrolment ("+EnvNodeName+")")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error ("+EnvLogLevel+")")
	f.StringVar(&saJWKS, "sa-jwks", "auto", "service-account issuer keys offered to the hub (a proposal an operator approves with pullgate-hub cluster jwks approve): auto (the API server's /openid/v1/jwks when in a pod), off, or a JWKS file ("+EnvSAJWKS+")")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	f.StringVar(&containerdConfigPath, "containerd-config-path", "", "containerd's registry config_path (e.g. /etc/containerd/certs.d): keep a hosts.toml there for each upstream host the node's installs use; empty disables ("+EnvContainerdConfigPath+")")
	f.StringVar(&hubURL, "hub-url", "", "the hub's HTTP(S) URL as this node reaches it, e.g. https://hub.example.com; required with --containerd-config-path ("+EnvHubURL+")")
	f.StringVar(&hubCA, "hub-ca", "", "CA certificate file for the hub's TLS certificate, written into the hosts.toml files ("+EnvHubCA+")")
	f.DurationVar(&mirrorGrace, "mirror-grace", containerd.DefaultRemoveGrace, "keep a mirror this long after no install uses its upstream, and at least while a live token handed out for it does, so tokens the kubelet still caches never go to the upstream itself")
	f.StringSliceVar(&mirrorHosts, "mirror-host", nil, "upstream host to mirror through the hub (repeatable or comma-separated); required on shared clusters, narrows the set elsewhere ("+EnvMirrorHosts+")")
	f.BoolVar(&removeRevoked, "remove-revoked-images", false, "remove (CRI RemoveImage) the images this node pulled only for installs the hub has since revoked ("+EnvRemoveRevokedImages+")")
	f.StringVar(&criEndpoint, "cri-endpoint", imageprune.DefaultCRIEndpoint, "the container runtime's CRI socket, for --remove-revoked-images ("+EnvCRIEndpoint+")")
	f.StringSliceVar(&externalMirrors, "external-mirror-host", nil, "upstream host that the runtime always sends to the hub, with no fallback to the upstream, through a mirror the agent does not manage; the helper answers images named by it (repeatable or comma-separated; "+EnvExternalMirrorHosts+")")
	return cmd
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}

func kubeletConfigCommand(stdout io.Writer, env Env) *cobra.Command {
	var o kubeletconfig.Options
	cmd := &cobra.Command{
		Use:   "kubelet-config",
		Short: "Print the kubelet CredentialProviderConfig that runs pullgate-credential-provider",
		Long: `Print a ready kubelet CredentialProviderConfig (kubelet.config.k8s.io/v1) for
pullgate-credential-provider. Save it where the kubelet's
--image-credential-provider-config points, and install the helper binary in
--image-credential-provider-bin-dir (on k3s: /var/lib/rancher/credentialprovider/config.yaml
and /var/lib/rancher/credentialprovider/bin).

--match-image lists the images the helper is asked about: the upstream hosts
the node mirrors through the hub (containerd hosts.toml), and the hub's own
host for path-prefix images (HUB/<upstream-host>/<repo>).

--shared is for clusters that hold installs of several workspaces: the kubelet
then passes each pod's service-account token (audience "pullgate", KEP-4412,
beta since Kubernetes 1.34) and the hub picks the install bound to the pod's
namespace/service account.`,
		Example: `  pullgate-agent kubelet-config --match-image ghcr.io --match-image hub.example.com \
    > /etc/kubernetes/credential-provider.yaml

  # a shared (multi-workspace) cluster, k3s paths
  pullgate-agent kubelet-config --shared --match-image registry.example.com \
    > /var/lib/rancher/credentialprovider/config.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags(), env, map[string]string{"socket": EnvSocket}); err != nil {
				return err
			}
			cfg, err := kubeletconfig.Build(o)
			if err != nil {
				return usageError{err}
			}
			out, err := kubeletconfig.Marshal(cfg)
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Shared, "shared", false, "multi-workspace cluster: pass pods' service-account tokens (tokenAttributes)")
	f.StringArrayVar(&o.MatchImages, "match-image", nil, "image pattern the helper serves (repeatable), e.g. ghcr.io, *.azurecr.io, hub.example.com")
	f.StringVar(&o.Socket, "socket", wire.DefaultSocket, "the agent's socket, passed to the helper: the same as pullgate-agent run --socket ("+EnvSocket+")")
	f.StringVar(&o.PluginName, "plugin-name", kubeletconfig.PluginName, "the helper's file name in the kubelet's credential provider bin dir")
	f.DurationVar(&o.CacheDuration, "cache-duration", kubeletconfig.DefaultCacheDuration, "defaultCacheDuration; responses carry a shorter one from the token's life")
	f.StringVar(&o.Audience, "audience", kubeletconfig.DefaultAudience, "service-account token audience (with --shared)")
	return cmd
}
