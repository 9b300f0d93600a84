package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/audit"
	"github.com/pullgate/pullgate/hub/cli"
	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/proxy"
)

// DefaultMetricsListen is where `serve` answers /metrics unless told
// otherwise: loopback, one port above the agent's 9464.
const DefaultMetricsListen = "127.0.0.1:9465"

// Command is `pullgate-hub serve`.
func Command() *cobra.Command {
	var cfg Config
	var logLevel, logFormat string
	var cacheMode, cacheSize string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: pull proxy, REST API, token service and embedded NATS",
		Long: `Run the hub with embedded defaults: a SQLite store, a master key and an admin
token created in the data dir on first start, an embedded NATS server, and
HTTP on 127.0.0.1:5080. Prometheus metrics are served on
their own address (--metrics-listen, 127.0.0.1:9465), never on --listen.
Audit events are kept for 90 days (--audit-retention).

One hub per data dir: the hub locks <data>/hub.lock while it runs, and a
second one started on the same --data refuses, naming the first (its pid
and host). Replicas each get a data dir of their own, and share: one
--database postgres://..., --nats-url with every node of one NATS cluster
(comma-separated), PULLGATE_MASTER_KEY, and copies of admin.token,
nats-issuer.nk and nats-hub.password in each data dir.

Blobs and manifests are cached in <data>/cache (--cache-size, 20GiB by
default; --cache off turns the cache off). A cached entry is served to an
install only after the upstream confirmed, with that install's own
credential, that the repository has it (a HEAD, remembered for
--cache-confirm-ttl). While an upstream is unreachable, failing or rate
limiting, cached content its credential confirmed within --cache-stale is
served, and the audit trail says "stale".

With --cache-backend s3 the entries live in an S3-compatible bucket
(--cache-s3-bucket, --cache-s3-endpoint) that several replicas share: each
replica serves what any of them cached, after its own confirmation with the
install's credential. Fills are staged in --cache-dir and uploaded once
verified. While the object store is unreachable, pulls go to the upstream
uncached; the cache is used again as soon as it answers. Credentials come
from the standard AWS chain or --cache-s3-credentials-file.

The embedded NATS server serves TLS with --nats-tls-cert/--nats-tls-key, or
with the HTTPS pair (--tls-cert/--tls-key) when those are not given. It
refuses to serve plain text on a non-loopback --nats-listen address unless
--insecure-nats is given: join tokens, node secrets and install tokens
cross it.

Environment: PULLGATE_MASTER_KEY (hex, instead of <data>/master.key),
PULLGATE_DATABASE (postgres://... instead of SQLite).`,
		Example: `  pullgate-hub serve
  pullgate-hub serve --data /var/lib/pullgate --listen 0.0.0.0:443 --tls-cert hub.crt --tls-key hub.key --public-url https://hub.example.com \
    --nats-listen 0.0.0.0:4222   # NATS over TLS with the same key pair; agents use tls://hub.example.com:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cfg.MasterKey == "" {
				cfg.MasterKey = os.Getenv("PULLGATE_MASTER_KEY")
			}
			if cfg.Database == "" {
				cfg.Database = os.Getenv("PULLGATE_DATABASE")
			}
			if !cmd.Flags().Changed("akash-import-credentials") {
				if v := os.Getenv("PULLGATE_AKASH_IMPORT_CREDENTIALS"); v != "" {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return fmt.Errorf("PULLGATE_AKASH_IMPORT_CREDENTIALS %q: want true or false", v)
					}
					cfg.AkashImportCredentials = b
				}
			}
			if cfg.TokenTTL < time.Minute || cfg.TokenTTL > 24*time.Hour {
				return fmt.Errorf("--token-ttl %v: want 1m to 24h", cfg.TokenTTL)
			}
			if cfg.WriteTimeout < time.Second {
				return fmt.Errorf("--write-timeout %v: want 1s or more", cfg.WriteTimeout)
			}
			if err := cacheFlags(&cfg, cacheMode, cacheSize); err != nil {
				return err
			}
			if err := sessionFlags(cfg); err != nil {
				return err
			}
			if err := s3CacheFlags(&cfg, cmd.Flags().Changed); err != nil {
				return cli.UsageErrorf("%w", err)
			}
			if cfg.PublicURL != "" && !strings.HasPrefix(cfg.PublicURL, "http://") && !strings.HasPrefix(cfg.PublicURL, "https://") {
				return fmt.Errorf("--public-url %q: want an http:// or https:// URL", cfg.PublicURL)
			}
			if err := akashTenantsFlag(&cfg, cmd.Flags().Changed("akash-tenants")); err != nil {
				return cli.UsageErrorf("%w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "./pullgate-data", "data directory: database, master key, admin token, NATS keys, cache")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:5080", "HTTP(S) listen address")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (serve HTTPS)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients reach the hub at, for auth challenges (default: from each request)")
	f.StringVar(&cfg.Database, "database", "", "SQLite file path or postgres:// URL (default: <data>/pullgate.db)")
	f.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", `embedded NATS listen address ("" to disable)`)
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use the external NATS server at `URL` instead of the embedded one (configure it with: pullgate-hub nats-config); tls:// unless on loopback")
	f.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", "", "TLS certificate file of the embedded NATS server (default: --tls-cert)")
	f.StringVar(&cfg.NATSTLSKey, "nats-tls-key", "", "TLS private key file of the embedded NATS server (default: --tls-key)")
	f.StringVar(&cfg.NATSCA, "nats-ca", "", "CA certificate file to verify the external --nats-url server (default: system roots)")
	f.BoolVar(&cfg.InsecureNATS, "insecure-nats", false, "allow plain-text NATS off loopback (embedded listener or --nats-url): credentials cross the network in clear text")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", 10*time.Minute, "lifetime of install tokens issued to node agents")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", DefaultMetricsListen, `address for /metrics, /healthz and /readyz, apart from --listen ("" to disable)`)
	cfg.AuditRetention = audit.DefaultRetention
	f.Var(daysValue{&cfg.AuditRetention}, "audit-retention", "delete audit events older than this (90d, 720h; 0 keeps them for ever)")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", proxy.DefaultWriteTimeout, "drop a pull client that accepts no data for this long")
	f.StringVar(&cacheMode, "cache", "on", "pull-through cache of blobs and manifests: on or off")
	f.StringVar(&cfg.Cache.Dir, "cache-dir", "", "directory of the cache (default: <data>/cache); with --cache-backend s3, of the fills being staged for upload")
	f.StringVar(&cfg.Cache.Backend, "cache-backend", "local", "where cached entries live: local (--cache-dir) or s3 (an S3-compatible bucket several replicas can share)")
	f.StringVar(&cfg.Cache.S3.Endpoint, "cache-s3-endpoint", "", "URL of the S3-compatible object store (default: AWS S3); http:// only on a trusted network")
	f.StringVar(&cfg.Cache.S3.Bucket, "cache-s3-bucket", "", "bucket of the s3 cache backend (required with --cache-backend s3)")
	f.StringVar(&cfg.Cache.S3.Prefix, "cache-s3-prefix", "", "key prefix of the cache's objects in the bucket, e.g. pullgate/")
	f.StringVar(&cfg.Cache.S3.Region, "cache-s3-region", "", "region of the bucket (default: AWS_REGION or the shared config's, else us-east-1)")
	f.BoolVar(&cfg.Cache.S3.PathStyle, "cache-s3-path-style", false, "address the bucket as <endpoint>/<bucket> (most self-hosted stores: MinIO, SeaweedFS, Ceph)")
	f.StringVar(&cfg.Cache.S3.CredentialsFile, "cache-s3-credentials-file", "", "AWS shared-credentials `file` for the object store (default: the standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config, web identity, instance role)")
	f.StringVar(&cacheSize, "cache-size", "20GiB", "size cap of the cache; least recently used entries are evicted (e.g. 512MiB, 100GiB)")
	f.DurationVar(&cfg.Cache.Proxy.ConfirmTTL, "cache-confirm-ttl", proxy.DefaultConfirmTTL, "how long the upstream's confirmation that a credential can read a cached digest is trusted before the next HEAD")
	f.DurationVar(&cfg.Cache.Proxy.TagTTL, "cache-tag-ttl", 0, "how long a tag's digest is used without asking the upstream (0: every tag request sends a HEAD; at most --cache-confirm-ttl)")
	f.DurationVar(&cfg.Cache.Proxy.StaleWindow, "cache-stale", proxy.DefaultStaleWindow, "serve cached content while the upstream is down, if the credential confirmed it within this window (0: never)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", api.DefaultSessionTTL, "absolute lifetime of a console session")
	f.DurationVar(&cfg.SessionIdle, "session-idle", api.DefaultSessionIdle, "a console session ends after this long without a request")
	f.BoolVar(&cfg.AkashTenants, "akash-tenants", false, "tenant self-service: an Akash account owner logs in by signing a challenge with the account's key and gets a workspace of its own (needs --public-url; env "+envAkashTenants+")")
	f.BoolVar(&cfg.AkashImportCredentials, "akash-import-credentials", false, "let a provider cluster's Akash binding controller import registry credentials from lease manifests into the owners' workspaces (env PULLGATE_AKASH_IMPORT_CREDENTIALS; the provider still holds those passwords in plaintext)")
	return cmd
}

// envAkashTenants turns on --akash-tenants ("true", "1").
const envAkashTenants = "PULLGATE_AKASH_TENANTS"

// akashTenantsFlag reads --akash-tenants, or its environment variable when
// the flag is not given, and checks that the hub has the public URL its
// login challenges name: a signature made for one hub must be no login on
// another.
func akashTenantsFlag(cfg *Config, flagGiven bool) error {
	if v := os.Getenv(envAkashTenants); v != "" && !flagGiven {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", envAkashTenants, v)
		}
		cfg.AkashTenants = on
	}
	if cfg.AkashTenants && cfg.PublicURL == "" {
		return fmt.Errorf("--akash-tenants needs --public-url: the login challenges tenants sign name the hub's URL")
	}
	return nil
}

// sessionFlags checks the console session lifetimes: short, by design.
func sessionFlags(cfg Config) error {
	if cfg.SessionTTL < 5*time.Minute || cfg.SessionTTL > 7*24*time.Hour {
		return fmt.Errorf("--session-ttl %v: want 5m to 168h", cfg.SessionTTL)
	}
	if cfg.SessionIdle < time.Minute || cfg.SessionIdle > cfg.SessionTTL {
		return fmt.Errorf("--session-idle %v: want 1m to --session-ttl (%v)", cfg.SessionIdle, cfg.SessionTTL)
	}
	return nil
}

// cacheFlags checks the cache flags into cfg.
func cacheFlags(cfg *Config, mode, size string) error {
	switch mode {
	case "on":
	case "off":
		cfg.Cache.Off = true
	default:
		return fmt.Errorf("--cache %q: want on or off", mode)
	}
	n, err := parseSize(size)
	if err != nil {
		return fmt.Errorf("--cache-size: %w", err)
	}
	if n < 1<<20 {
		return fmt.Errorf("--cache-size %q: want at least 1MiB", size)
	}
	cfg.Cache.MaxBytes = n
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--cache-confirm-ttl", cfg.Cache.Proxy.ConfirmTTL}, {"--cache-tag-ttl", cfg.Cache.Proxy.TagTTL}, {"--cache-stale", cfg.Cache.Proxy.StaleWindow}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: must not be negative", d.name, d.v)
		}
	}
	if cfg.Cache.Proxy.ConfirmTTL == 0 || cfg.Cache.Proxy.ConfirmTTL > 24*time.Hour {
		return fmt.Errorf("--cache-confirm-ttl %v: want more than 0 and at most 24h", cfg.Cache.Proxy.ConfirmTTL)
	}
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// NATSConfigCommand is `pullgate-hub nats-config`: the configuration block
// an external nats-server needs for the hub's auth callout.
func NATSConfigCommand() *cobra.Command {
	var dataDir string
	var t natsauth.TLSFiles
	cmd := &cobra.Command{
		Use:   "nats-config",
		Short: "Print the nats-server configuration block for an external NATS server",
		Long: `Print the authorization block to put in an external nats-server's
configuration so that it asks the hub about every agent connection (auth
callout). Then start the hub with --nats-url pointing at that server. The
keys it names are created in the data dir if missing; every hub replica
sharing the server needs the same nats-issuer.nk and nats-hub.password.

With --tls-cert and --tls-key it also prints a tls block: the server then
takes TLS connections only, agents use tls://, and the hub connects with
--nats-url tls://... (and --nats-ca when the certificate is not publicly
trusted). Without them the block carries a warning: agents' credentials
would cross the network in clear text.`,
		Example: `  pullgate-hub nats-config --data /var/lib/pullgate \
    --tls-cert /etc/nats/tls.crt --tls-key /etc/nats/tls.key >> /etc/nats/nats-server.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (t.Cert == "") != (t.Key == "") || (t.CA != "" && t.Cert == "") {
				return errors.New("--tls-cert and --tls-key go together (and --tls-ca needs them)")
			}
			creds, err := natsauth.LoadOrCreate(dataDir)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), creds.ConfigBlock(t))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./pullgate-data", "data directory holding the hub's NATS keys")
	cmd.Flags().StringVar(&t.Cert, "tls-cert", "", "certificate file the NATS server presents (path as the server sees it)")
	cmd.Flags().StringVar(&t.Key, "tls-key", "", "private key file of --tls-cert")
	cmd.Flags().StringVar(&t.CA, "tls-ca", "", "CA file for the server's tls block (ca_file), optional")
	return cmd
}
