package akash

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Config is everything `pullgate-agent akash` runs with.
type Config struct {
	Kube   *rest.Config
	Hub    *HubClient
	Resync time.Duration
	Log    *slog.Logger

	// ImportCredentials turns on the Manifest importer and the webhook's
	// image maps (part 4, opt-in).
	ImportCredentials bool
	ManifestNamespace string

	// WebhookListen (with WebhookCert/WebhookKey) serves /mutate-pods
	// over HTTPS; empty: no webhook.
	WebhookListen, WebhookCert, WebhookKey string
	// MetricsListen serves /metrics, /healthz and /readyz over HTTP;
	// empty: none.
	MetricsListen string

	// Started, when set, is called with the bound addresses (tests).
	Started func(metrics, webhook net.Addr)
}

// Run runs the controller (and importer and webhook) until ctx ends, then
// stops the servers gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	dc, err := dynamic.NewForConfig(cfg.Kube)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	maps := NewImageMaps()
	var importer *Importer
	ctl := NewController(dc, cfg.Hub, WithLogger(log), WithResync(cfg.Resync),
		WithOnBind(func(ns string) {
			if importer != nil {
				importer.Requeue(ns)
			}
		}),
		WithOnUnbind(func(ns string) {
			if importer != nil {
				importer.Forget(ns)
			}
		}))
	if cfg.ImportCredentials {
		importer = NewImporter(dc, cfg.ManifestNamespace, cfg.Hub, ctl, maps, log)
	}
	wh := NewWebhook(maps, log)
	ready := func() bool { return ctl.Ready() && (importer == nil || importer.Synced()) }

	reg := prometheus.NewRegistry()
	for _, c := range []struct {
		name, help string
		f          func() uint64
	}{
		{"pullgate_akash_namespaces_skipped_total", "Lease-labelled namespaces skipped: their labels do not describe the lease their name encodes.", ctl.Skipped},
		{"pullgate_akash_hub_errors_total", "Failed lease calls to the hub (each is retried).", ctl.Failed},
		{"pullgate_akash_webhook_mutated_total", "Pods the webhook pointed at the hub.", wh.Mutated},
		{"pullgate_akash_webhook_unchanged_total", "Pods in lease namespaces the webhook allowed unchanged.", wh.Unchanged},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.f()) }))
	}
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready: caches syncing or the hub not yet told the lease set", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	g, gctx := errgroup.WithContext(ctx)
	var servers []*http.Server
	var mAddr, wAddr net.Addr
	if cfg.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", health)
		mux.Handle("/readyz", health)
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mAddr = ln.Addr()
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		g.Go(func() error { return serve(srv, ln, "metrics") })
	}
	if cfg.WebhookListen != "" {
		certs, err := newCertReloader(cfg.WebhookCert, cfg.WebhookKey)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle(WebhookPath, wh)
		mux.Handle("/healthz", health)
		mux.Handle("/readyz", health)
		ln, err := net.Listen("tcp", cfg.WebhookListen)
		if err != nil {
			return fmt.Errorf("--webhook-listen: %w", err)
		}
		wAddr = ln.Addr()
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second,
			WriteTimeout: 20 * time.Second, MaxHeaderBytes: 64 << 10,
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}}
		servers = append(servers, srv)
		g.Go(func() error { return serve(srv, tls.NewListener(ln, srv.TLSConfig), "webhook") })
	}
	if cfg.Started != nil {
		cfg.Started(mAddr, wAddr)
	}
	g.Go(func() error { return ctl.Run(gctx) })
	if importer != nil {
		g.Go(func() error { return importer.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})
	log.Info("akash: controller started", "import_credentials", cfg.ImportCredentials, "webhook", cfg.WebhookListen != "")
	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

func serve(srv *http.Server, ln net.Listener, what string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", what, err)
	}
	return nil
}

// certReloader reads the webhook's key pair again when its files change
// (a Secret volume is updated in place).
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	mod               time.Time
	cert              *tls.Certificate
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(nil); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := os.Stat(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("webhook certificate: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && st.ModTime().Equal(r.mod) {
		return r.cert, nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // half-written update: keep the last good pair
		}
		return nil, fmt.Errorf("webhook key pair: %w", err)
	}
	r.cert, r.mod = &c, st.ModTime()
	return r.cert, nil
}
