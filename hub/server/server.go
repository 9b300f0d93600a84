// Package server runs the hub: store, secrets, signing keys, the REST API,
// the pull proxy, the audit writer and the embedded NATS control plane, in
// one process with embedded defaults.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/audit"
	"github.com/pullgate/pullgate/hub/console"
	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/proxy"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/tokensvc"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/internal/version"
)

// Config is everything `pullgate-hub serve` takes.
type Config struct {
	DataDir    string
	Listen     string
	TLSCert    string
	TLSKey     string
	PublicURL  string
	Database   string // "" = SQLite in DataDir; postgres://... for PostgreSQL
	MasterKey  string // hex; "" = <data>/master.key
	NATSListen string // "" disables the embedded NATS server
	NATSURL    string // external NATS server instead of the embedded one
	TokenTTL   time.Duration
	// MetricsListen serves /metrics (and /healthz, /readyz) apart from the
	// public listener; "" disables it.
	MetricsListen string
	// AuditRetention deletes audit events older than this; 0 keeps them.
	AuditRetention time.Duration
	// WriteTimeout drops a pull client that takes longer than this to
	// accept one buffer of a stream (0: proxy.DefaultWriteTimeout).
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// Ready, when set, receives the bound HTTP address once serving.
	Ready func(addr string)

	// NATSTLSCert and NATSTLSKey are the embedded NATS server's key pair
	// (default: TLSCert and TLSKey); NATSCA verifies an external server.
	NATSTLSCert, NATSTLSKey, NATSCA string
	// InsecureNATS accepts plain-text NATS off loopback.
	InsecureNATS bool
	// MetricsReady, when set, receives the bound metrics address.
	MetricsReady func(addr string)
	// Cache configures the pull-through cache (on by default).
	Cache CacheConfig
	// SessionTTL and SessionIdle bound console sessions (0: the API's
	// defaults).
	SessionTTL, SessionIdle time.Duration
	// AkashTenants turns on tenant self-service (api.Deps.AkashTenants).
	AkashTenants bool
	// AkashImportCredentials lets Akash binding controllers import lease
	// manifests' registry credentials (opt-in).
	AkashImportCredentials bool
}

// Run serves until ctx is cancelled, then shuts down gracefully: in-flight
// pulls get up to 30 seconds, queued audit events are written.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Flags first: a bad one must fail before anything is created.
	tlsConf, err := loadTLS(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return err
	}
	natsTLS, err := natsServerTLS(cfg, tlsConf)
	if err != nil {
		return err
	}
	natsClient, err := natsClientTLS(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// One hub per data directory: two would share the SQLite file, the
	// NATS JetStream store and the keys.
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	sealer, err := openSealer(cfg, log)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := loadKeyring(ctx, st, sealer)
	if err != nil {
		return err
	}
	tokenPath := filepath.Join(cfg.DataDir, "admin.token")
	adminToken, created, err := loadOrCreateAdminToken(tokenPath)
	if err != nil {
		return err
	}
	if created {
		log.Info("created admin token", "file", tokenPath)
	}

	m := metrics.New()
	var ns *natsserver.Server
	var revoker api.Revoker
	var saVerifier api.ServiceAccountVerifier
	if cfg.NATSURL != "" || cfg.NATSListen != "" {
		creds, err := natsauth.LoadOrCreate(cfg.DataDir)
		if err != nil {
			return err
		}
		if cfg.NATSURL == "" {
			if ns, err = startNATS(cfg.NATSListen, natsTLS, creds); err != nil {
				return err
			}
			defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
			log.Info("embedded NATS ready", "url", ns.ClientURL(), "tls", natsTLS != nil)
		}
		nc, err := connectNATS(cfg.NATSURL, natsClient, ns, creds, log)
		if err != nil {
			return err
		}
		defer nc.Close()
		if _, err := natsauth.New(st, creds.Issuer, natsauth.WithLogger(log)).Subscribe(nc); err != nil {
			return err
		}
		svc := tokensvc.New(st, keys, tokensvc.WithTTL(cfg.TokenTTL), tokensvc.WithLogger(log),
			tokensvc.WithMintHook(m.TokensMinted.Inc), tokensvc.WithHubHosts(hubHosts(cfg)...))
		if err := svc.Start(nc); err != nil {
			return err
		}
		defer svc.Stop()
		revoker = nodeRevoker{Service: svc, ns: ns, store: st, log: log}
		saVerifier = svc
	}

	aw := audit.NewWriter(st, log, audit.WithErrorHook(m.AuditDropped.Inc))
	defer aw.Close()
	go audit.KeepFor(ctx, st, cfg.AuditRetention, log)
	pool := upstream.NewPool()
	creds := credential.NewSource(credential.WithFetchHook(func(kind string, err error) {
		result := "ok"
		if err != nil {
			result = "error"
		}
		m.TokenFetches.WithLabelValues(kind, result).Inc()
	}))
	pxOpts := []proxy.Option{proxy.WithMetrics(m), proxy.WithLogger(log), proxy.WithPool(pool), proxy.WithPublicURL(cfg.PublicURL),
		proxy.WithCredentialSource(creds), proxy.WithStreamChecks(0, 0, cfg.WriteTimeout)}
	cfg.Logger = log
	pc, err := openCache(ctx, cfg)
	if err != nil {
		return err
	}
	if pc != nil {
		cc := cfg.Cache.Proxy
		cc.Cache = pc
		pxOpts = append(pxOpts, proxy.WithCache(cc))
		registerCacheMetrics(m, pc)
		cs := pc.Stats()
		log.Info("pull-through cache", "entries", cs.Entries, "bytes", cs.Bytes, "max_bytes", cs.MaxBytes)
	}
	px := proxy.New(st, sealer, keys, aw, pxOpts...)
	var cacheAPI api.CacheAdmin
	if pc != nil {
		cacheAPI = cacheAdmin{c: pc, px: px}
	}
	apiHandler := api.New(api.Deps{
		ServiceAccounts: saVerifier, AkashImportCredentials: cfg.AkashImportCredentials,
		Store: st, Sealer: sealer, Keyring: keys, AdminToken: adminToken, Logger: log,
		OnTokenMinted: m.TokensMinted.Inc, Revoker: revoker, PublicURL: cfg.PublicURL, AuditFlush: aw.Flush, Cache: cacheAPI,
		SessionTTL: cfg.SessionTTL, SessionIdle: cfg.SessionIdle, AkashTenants: cfg.AkashTenants,
		Check: func(ctx context.Context, c store.Credential, s credential.Secret, repo string) upstream.CheckResult {
			return creds.Check(ctx, pool, c, s, repo)
		},
	})

	health := func(mux *http.ServeMux) {
		mux.Handle("GET /healthz", m.Instrument("healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		})))
		mux.Handle("GET /readyz", m.Instrument("readyz", readyHandler(st, ns, log)))
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", m.Instrument("api", apiHandler))
	health(mux)
	// The web console: "/" and /assets/ only (anything else it answers
	// 404); the proxy's /v2/ and /auth/token are routed before this mux.
	mux.Handle("/", m.Instrument("console", console.Handler()))

	// /metrics names workspaces, credentials and upstream hosts: it has a
	// listener of its own (loopback by default), never the public one.
	var msrv *http.Server
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("listen %s (--metrics-listen): %w", cfg.MetricsListen, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", m.Instrument("metrics", m.Handler()))
		health(mmux)
		msrv = newHTTPServer(mmux, log)
		go func() {
			if err := msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener", "err", err)
			}
		}()
		log.Info("metrics serving", "url", "http://"+mln.Addr().String()+"/metrics")
		if cfg.MetricsReady != nil {
			cfg.MetricsReady(mln.Addr().String())
		}
		defer msrv.Close()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	proxyHandler := px.Handler()
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if proxy.Owns(r) {
			proxyHandler.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), log)
	scheme := "http"
	if tlsConf != nil {
		srv.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("hub serving", "version", version.Version(), "url", scheme+"://"+ln.Addr().String(), "data", cfg.DataDir)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: in-flight requests cut off", "err", err)
	}
	return nil
}

// newHTTPServer has the hub's connection limits: a client gets 10 seconds
// to send its headers and 2 minutes idle between requests. There is no
// overall write timeout (a layer may take long); the proxy sets a deadline
// per write instead, and ReadTimeout would cancel a streaming request's
// context.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// hubHosts are the names images use for the hub in path-prefix form.
func hubHosts(cfg Config) []string {
	var hosts []string
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		hosts = append(hosts, u.Host)
	}
	return append(hosts, cfg.Listen)
}

func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func openSealer(cfg Config, log *slog.Logger) (*secrets.Sealer, error) {
	if cfg.MasterKey != "" {
		key, err := secrets.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("master key from environment: %w", err)
		}
		return secrets.New(key)
	}
	path := filepath.Join(cfg.DataDir, "master.key")
	key, created, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated master key; back it up, secrets cannot be read without it", "file", path)
	}
	return secrets.New(key)
}

// openStore opens the database the configuration names: the one store
// every part of the hub is handed its narrow view of.
func openStore(ctx context.Context, cfg Config) (*store.SQL, error) {
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
		return store.OpenPostgres(ctx, cfg.Database)
	}
	path := cfg.Database
	if path == "" {
		path = filepath.Join(cfg.DataDir, "pullgate.db")
	}
	return store.OpenSQLite(ctx, path)
}

// workspaceLister is how readiness checks the store answers.
type workspaceLister interface {
	ListWorkspaces(ctx context.Context) ([]store.Workspace, error)
}

// readyHandler answers GET /readyz. It is public: the answer says which
// part is not ready, never its error (a database error names the
// database's host, user and paths); the error goes to the log.
func readyHandler(st workspaceLister, ns *natsserver.Server, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context(), st, ns); err != nil {
			part, _, _ := strings.Cut(err.Error(), ":")
			log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
			http.Error(w, "not ready: "+part, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

func ready(ctx context.Context, st workspaceLister, ns *natsserver.Server) error {
	if _, err := st.ListWorkspaces(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if ns != nil && !ns.ReadyForConnections(time.Second) {
		return errors.New("nats not ready")
	}
	return nil
}
