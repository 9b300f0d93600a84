package cli

import (
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/pullgate/pullgate/agent/akash"
)

// Environment variables of `pullgate-agent akash` (the hub URL and CA share
// PULLGATE_HUB_URL and PULLGATE_HUB_CA with run).
const (
	EnvCluster           = "PULLGATE_CLUSTER"
	EnvTokenFile         = "PULLGATE_TOKEN_FILE"
	EnvKubeconfig        = "KUBECONFIG"
	EnvImportCredentials = "PULLGATE_AKASH_IMPORT_CREDENTIALS"
	EnvInsecureHub       = "PULLGATE_INSECURE_HUB"
)

// DefaultAkashMetricsListen is where `akash` serves /metrics, /healthz and
// /readyz by default.
const DefaultAkashMetricsListen = "127.0.0.1:9466"

func akashCommand(stderr io.Writer, env Env) *cobra.Command {
	var (
		hubURL, hubCA, cluster, tokenFile, kubeconfig, manifestNS string
		webhookListen, webhookCert, webhookKey, metricsListen     string
		logLevel, logFormat                                       string
		resync                                                    time.Duration
		importCreds, insecureHub                                  bool
	)
	cmd := &cobra.Command{
		Use:   "akash",
		Short: "Run the Akash provider's binding controller (lease namespaces → hub), and optionally the credentials import and pod webhook",
		Long: `Run on an Akash provider's cluster (one small Deployment, not on every node)
until SIGTERM/SIGINT.

The controller watches Namespaces labelled akash.network/lease.id.owner (the
provider's lease namespaces), checks that each one's name is the namespace of
the lease its labels describe, and tells the hub (--hub) which leases run on
this cluster (--cluster, the hub's name for it): one PUT per new lease, a
DELETE when its namespace goes, and the whole set at start and every
--resync. The hub then serves each lease owner's Akash installs in the
lease's namespace. The provider's label rewrites on reconcile change nothing.

It authenticates to the hub with its projected service-account token
(--token-file, read again for every request); the hub accepts it only from
the service account named in "pullgate-hub cluster update --akash-controller".
It only reads Namespaces (and, with --import-credentials, Manifests in
--manifest-namespace): it never writes to the Kubernetes API and never reads
Secrets.

--import-credentials (off by default) is for tenants who still put registry
credentials in their SDL: the controller reads each lease's Manifest
(akash.network/v2beta2, in --manifest-namespace), imports the credentials into
the lease owner's workspace on the hub (the hub must run with
--akash-import-credentials), and keeps the hub's image names for the lease.
With --webhook-listen it serves a mutating admission webhook (POST
/mutate-pods, HTTPS with --webhook-cert/--webhook-key) that points the
matching images of new pods in that lease's namespace at the hub and drops
their docker-creds-* pull secrets. It never denies a pod. Register it with
failurePolicy Ignore: when it is down, pods are created as the provider made
them (pulled with the provider's own secret), rather than every lease's pod
creation blocking. The provider still holds the plaintext password in the
Manifest and the Secret: tenants should move the credential to the hub and
rotate it.

/healthz, /readyz and /metrics are served on --metrics-listen (and /healthz,
/readyz on the webhook's port too). Every flag can also be set through its
environment variable (the flag wins).`,
		Example: `  # in a pod (in-cluster API access), the chart's settings
  pullgate-agent akash --hub https://hub.example.com --cluster provider-1 \
    --token-file /var/run/secrets/pullgate/token

  # with the credentials import and the webhook
  pullgate-agent akash --hub https://hub.example.com --cluster provider-1 \
    --token-file /var/run/secrets/pullgate/token --import-credentials \
    --webhook-listen :8443 --webhook-cert /tls/tls.crt --webhook-key /tls/tls.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags(), env, map[string]string{
				"hub": EnvHubURL, "hub-ca": EnvHubCA, "cluster": EnvCluster, "token-file": EnvTokenFile,
				"kubeconfig": EnvKubeconfig, "import-credentials": EnvImportCredentials, "insecure-hub": EnvInsecureHub,
				"log-level": EnvLogLevel,
			}); err != nil {
				return err
			}
			log, err := newLogger(stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			if hubURL == "" || cluster == "" || tokenFile == "" {
				return usageError{errors.New("--hub, --cluster and --token-file are required")}
			}
			if resync < 10*time.Second {
				return usageError{fmt.Errorf("--resync %s: want at least 10s", resync)}
			}
			if err := akash.CheckWebhookTLS(webhookListen, webhookCert, webhookKey); err != nil {
				return usageError{err}
			}
			if webhookListen != "" && !importCreds {
				return usageError{errors.New("--webhook-listen needs --import-credentials: the webhook only rewrites images of imported credentials")}
			}
			if manifestNS == "" {
				return usageError{errors.New("--manifest-namespace: want the provider's --k8s-manifest-ns (default lease)")}
			}
			hub, err := akash.NewHubClient(hubURL, cluster, tokenFile, akash.WithHubCA(hubCA), akash.WithInsecureHub(insecureHub))
			if err != nil {
				return usageError{err}
			}
			kube, err := kubeConfig(kubeconfig)
			if err != nil {
				return usageError{err}
			}
			// client-go reports watch and list failures (RBAC, an
			// unreachable API server) through klog: into the same log.
			klog.SetSlogLogger(log.With("component", "client-go"))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return akash.Run(ctx, akash.Config{
				Kube: kube, Hub: hub, Resync: resync, Log: log,
				ImportCredentials: importCreds, ManifestNamespace: manifestNS,
				WebhookListen: webhookListen, WebhookCert: webhookCert, WebhookKey: webhookKey,
				MetricsListen: metricsListen,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&hubURL, "hub", "", "the hub's URL, e.g. https://hub.example.com ("+EnvHubURL+")")
	f.StringVar(&hubCA, "hub-ca", "", "CA certificate file (PEM) for the hub's TLS certificate; default: the system roots ("+EnvHubCA+")")
	f.BoolVar(&insecureHub, "insecure-hub", false, "allow an http:// hub URL to a non-loopback host: the service-account token crosses the network in clear text ("+EnvInsecureHub+")")
	f.StringVar(&cluster, "cluster", "", "the hub's name of this cluster (pullgate-hub cluster create --akash-provider ...) ("+EnvCluster+")")
	f.StringVar(&tokenFile, "token-file", "", "projected service-account token for the hub, read for every request ("+EnvTokenFile+")")
	f.DurationVar(&resync, "resync", akash.DefaultResync, "send the whole set of leases to the hub this often")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; default: the pod's in-cluster config ("+EnvKubeconfig+")")
	f.BoolVar(&importCreds, "import-credentials", false, "import registry credentials from the leases' Manifests into the owners' workspaces on the hub ("+EnvImportCredentials+")")
	f.StringVar(&manifestNS, "manifest-namespace", akash.DefaultManifestNamespace, "namespace of the provider's Manifest resources (provider-services --k8s-manifest-ns)")
	f.StringVar(&webhookListen, "webhook-listen", "", "address of the mutating pod webhook (HTTPS), e.g. :8443; empty: no webhook (needs --import-credentials)")
	f.StringVar(&webhookCert, "webhook-cert", "", "the webhook's TLS certificate (PEM), re-read when it changes")
	f.StringVar(&webhookKey, "webhook-key", "", "the webhook's TLS key (PEM)")
	f.StringVar(&metricsListen, "metrics-listen", DefaultAkashMetricsListen, "address for /metrics, /healthz and /readyz; empty disables")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error ("+EnvLogLevel+")")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

// kubeConfig loads a kubeconfig file, or the pod's in-cluster config
// (KUBERNETES_SERVICE_HOST/PORT and the service account's token and CA).
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	c, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not in a pod: %w", err)
	}
	return c, nil
}
