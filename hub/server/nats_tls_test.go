package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/identity"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testtls"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/wire"
)

// relay is an on-path observer: a TCP relay between agents and the hub's
// NATS port that records every byte, both ways.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	rec    bytes.Buffer
	conns  []net.Conn
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); r.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, u)
			r.mu.Unlock()
			go r.pipe(u, c)
			go r.pipe(c, u)
		}
	}()
	return r
}

func (r *relay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Write(p)
}

func (r *relay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, io.TeeReader(src, r))
	dst.Close()
	src.Close()
}

// cut drops every relayed connection (a network blip).
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func (r *relay) recorded() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.String()
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// natsHub is a real hub (server.Run) with its embedded NATS server on a
// known loopback port.
type natsHub struct {
	url, natsAddr, data string
	logs                *testlog.Buffer
}

func startNATSHub(t *testing.T, cfg Config) *natsHub {
	t.Helper()
	h := &natsHub{data: filepath.Join(t.TempDir(), "data"), logs: &testlog.Buffer{}}
	h.natsAddr = fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	cfg.DataDir, cfg.Listen, cfg.NATSListen, cfg.TokenTTL = h.data, "127.0.0.1:0", h.natsAddr, 10*time.Minute
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan string, 1)
	cfg.Ready = func(a string) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case a := <-ready:
		h.url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("hub: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("hub not ready after 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("hub did not stop")
		}
	})
	return h
}

func (h *natsHub) api(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(h.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// joinToken sets up a workspace with a registry and an install on a
// single-workspace cluster, and returns the cluster's join token.
func (h *natsHub) joinToken(t *testing.T) string {
	t.Helper()
	h.api(t, "POST", "/api/v1/workspaces", map[string]any{"name": "acme"})
	h.api(t, "POST", "/api/v1/workspaces/acme/registries", map[string]any{
		"name": "reg", "host": "registry.example.com", "username": "alice", "password": "upstream-password"})
	out := h.api(t, "POST", "/api/v1/clusters", map[string]any{"name": "edge", "workspace": "acme"})
	h.api(t, "POST", "/api/v1/workspaces/acme/installs", map[string]any{"name": "web", "cluster": "edge", "namespace": "default", "all_repos": true})
	tok, _ := out["join_token"].(string)
	if !strings.HasPrefix(tok, wire.JoinTokenPrefix) {
		t.Fatalf("create cluster: %v", out)
	}
	return tok
}

// An observer between a remote agent and the hub sees none of the join
// token, the node secret, a pod's service-account token or an install
// token: through enrolment (join token read from a file), a sync, token
// requests, and a reconnect. As a control, the same flow in plain text
// shows them all: the relay does see the traffic.
func TestNATSCarriesNoSecretsInClear(t *testing.T) {
	for _, c := range []struct {
		name     string
		tls      bool
		wantSeen bool
	}{
		{"tls", true, false},
		{"plain", false, true}, // control: --insecure-nats
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile, _ := testtls.SelfSigned(t, dir)
			cfg := Config{InsecureNATS: !c.tls}
			scheme := "nats"
			hubOpts := []hubclient.Option{hubclient.WithInsecurePlaintext(true)}
			if c.tls {
				cfg.NATSTLSCert, cfg.NATSTLSKey = certFile, keyFile
				scheme = "tls"
				hubOpts = []hubclient.Option{hubclient.WithCA(certFile)}
			}
			h := startNATSHub(t, cfg)
			join := h.joinToken(t)
			r := startRelay(t, h.natsAddr)

			joinFile := filepath.Join(dir, "join-token")
			if err := os.WriteFile(joinFile, []byte(join+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src, err := jointoken.WatchFile(ctx, joinFile)
			if err != nil {
				t.Fatal(err)
			}
			a := agenttest.Start(t, agenttest.Config{NATSURL: scheme + "://" + r.addr(), Join: src,
				Options: []agent.Option{agent.WithHubOptions(hubOpts...), agent.WithExternalMirrors("registry.example.com")}})
			a.WaitReady(t)

			saToken := "eyJhbGciOiJSUzI1NiJ9.c2VydmljZS1hY2NvdW50LXRva2VuLW9mLXRoZS1wb2Q.U0FTSUdOQVRVUkVfTUFSS0VS"
			first, err := a.Ask(wire.CredentialsRequest{Image: "registry.example.com/team/app:1", ServiceAccountToken: saToken})
			if err != nil {
				t.Fatalf("token through the agent: %v\n%s\n%s", err, a.Logs.String(), h.logs.String())
			}

			// A network blip: the agent reconnects (over TLS again) and
			// keeps being served.
			r.cut()
			agenttest.Eventually(t, 20*time.Second, func() bool {
				ok, _ := a.Agent.Ready()
				return ok && a.Agent.CacheStatus().Synced && strings.Count(a.Logs.String(), "reconnected to the hub's NATS") > 0
			}, "agent reconnected")
			second, err := a.Ask(wire.CredentialsRequest{Image: "registry.example.com/team/other:2", ServiceAccountToken: saToken})
			if err != nil {
				t.Fatalf("token after reconnect: %v\n%s", err, a.Logs.String())
			}

			id, err := identity.Load(a.StateDir)
			if err != nil {
				t.Fatal(err)
			}
			secrets := map[string]string{"join token": join, "node secret": id.NodeSecret, "service-account token": saToken,
				"install token": first.Password, "install token after reconnect": second.Password}
			seen := r.recorded()
			if !strings.Contains(seen, "INFO ") {
				t.Fatalf("the relay recorded no NATS traffic (%d bytes)", len(seen))
			}
			for what, s := range secrets {
				if s == "" {
					t.Fatalf("%s is empty", what)
				}
				if got := strings.Contains(seen, s); got != c.wantSeen {
					t.Errorf("%s in the recorded bytes: %v, want %v", what, got, c.wantSeen)
				}
			}
		})
	}
}

// Agents that would speak plain text to a TLS hub get nowhere, with an
// error that says what to fix, and send no credential: a raw client's
// CONNECT is refused; the agent (nats:// URL, no CA) upgrades before
// sending anything and fails verification; a tls:// agent to a plain hub
// is told the server has no TLS.
func TestPlainTextToTLSHubRefused(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testtls.SelfSigned(t, dir)
	h := startNATSHub(t, Config{NATSTLSCert: certFile, NATSTLSKey: keyFile})
	join := h.joinToken(t)

	// A raw plain-text client.
	c, err := net.DialTimeout("tcp", h.natsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	info, err := br.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO does not require TLS: %q %v", info, err)
	}
	fmt.Fprintf(c, "CONNECT {\"user\":\"enrol-%s\",\"pass\":%q,\"verbose\":true}\r\nPING\r\n", strings.Repeat("ab", 16), join)
	rest, _ := io.ReadAll(br)
	if strings.Contains(string(rest), "PONG") || strings.Contains(string(rest), "+OK") {
		t.Fatalf("plain-text CONNECT accepted by the TLS hub: %q", rest)
	}

	// The agent, configured for plain text on loopback and without the CA.
	r := startRelay(t, h.natsAddr)
	start := time.Now()
	_, err = hubclient.Enrol(context.Background(), "nats://"+r.addr(), join, wire.EnrolRequest{NodeName: "n"}, hubclient.WithTimeout(5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "--nats-ca") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("plain-text agent to a TLS hub: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("refusal took %v", time.Since(start))
	}
	if strings.Contains(r.recorded(), join) {
		t.Fatal("the join token crossed the relay")
	}
	// With the CA the same agent works (nats.go upgraded to TLS).
	if _, err := hubclient.Enrol(context.Background(), "nats://"+r.addr(), join, wire.EnrolRequest{NodeName: "n"}, hubclient.WithCA(certFile)); err != nil {
		t.Fatalf("nats:// upgraded to TLS with the CA: %v", err)
	}
	if strings.Contains(r.recorded(), join) {
		t.Fatal("the join token crossed the relay")
	}

	// tls:// to a hub without TLS.
	plain := startNATSHub(t, Config{})
	_, err = hubclient.Enrol(context.Background(), "tls://"+plain.natsAddr, join, wire.EnrolRequest{}, hubclient.WithCA(certFile))
	if err == nil || !strings.Contains(err.Error(), "does not offer TLS") {
		t.Fatalf("tls:// agent to a plain hub: %v", err)
	}
}

// The hub's NATS TLS settings: reuse of the HTTPS pair, the explicit pair,
// and the refusal of plain text off loopback. Refused settings fail before
// anything listens or is created.
func TestNATSServerTLSSettings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testtls.SelfSigned(t, dir)
	httpsTLS, err := loadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		cfg     Config
		https   *tls.Config
		wantTLS bool
		wantErr string
	}{
		{"loopback plain", Config{NATSListen: "127.0.0.1:4222"}, nil, false, ""},
		{"localhost plain", Config{NATSListen: "localhost:4222"}, nil, false, ""},
		{"all interfaces plain", Config{NATSListen: "0.0.0.0:4222"}, nil, false, "--insecure-nats"},
		{"empty host plain", Config{NATSListen: ":4222"}, nil, false, "--nats-tls-cert"},
		{"private address plain", Config{NATSListen: "10.0.0.5:4222"}, nil, false, "non-loopback"},
		{"all interfaces insecure", Config{NATSListen: "0.0.0.0:4222", InsecureNATS: true}, nil, false, ""},
		{"reuses the HTTPS pair", Config{NATSListen: "0.0.0.0:4222"}, httpsTLS, true, ""},
		{"own pair", Config{NATSListen: "0.0.0.0:4222", NATSTLSCert: certFile, NATSTLSKey: keyFile}, nil, true, ""},
		{"half a pair", Config{NATSListen: "127.0.0.1:4222", NATSTLSCert: certFile}, nil, false, "--nats-tls-key"},
		{"missing files", Config{NATSListen: "127.0.0.1:4222", NATSTLSCert: "/nonexistent.crt", NATSTLSKey: "/nonexistent.key"}, nil, false, "NATS TLS key pair"},
		{"external server", Config{NATSURL: "tls://nats.example.com:4222", NATSListen: "0.0.0.0:4222"}, nil, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := natsServerTLS(c.cfg, c.https)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != c.wantTLS || (got != nil && got.MinVersion < tls.VersionTLS12) {
				t.Fatalf("TLS config %v, want TLS %v (1.2 minimum)", got, c.wantTLS)
			}
		})
	}

	// The hub's own connection to an external server.
	for _, c := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{NATSURL: "tls://nats.example.com:4222"}, ""},
		{Config{NATSURL: "tls://nats.example.com:4222", NATSCA: certFile}, ""},
		{Config{NATSURL: "nats://127.0.0.1:4222"}, ""},
		{Config{NATSURL: "nats://nats.example.com:4222"}, "--insecure-nats"},
		{Config{NATSURL: "nats://nats.example.com:4222", InsecureNATS: true}, ""},
		{Config{NATSURL: "tls://nats.example.com:4222", NATSCA: keyFile}, "no PEM certificate"},
		{Config{NATSURL: "tls://nats.example.com:4222", NATSCA: "/nonexistent"}, "--nats-ca"},
	} {
		got, err := natsClientTLS(c.cfg)
		switch {
		case c.wantErr == "" && (err != nil || got == nil || got.MinVersion < tls.VersionTLS12):
			t.Errorf("%+v: %v %v", c.cfg, got, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%+v: err %v, want one naming %q", c.cfg, err, c.wantErr)
		}
	}

	// Through Run: nothing is created when the setting is refused.
	data := filepath.Join(dir, "refused")
	err = Run(context.Background(), Config{DataDir: data, Listen: "127.0.0.1:0", NATSListen: "0.0.0.0:4222"})
	if err == nil || !strings.Contains(err.Error(), "--insecure-nats") {
		t.Fatalf("Run with plain NATS on 0.0.0.0: %v", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir created by a refused start: %v", err)
	}

	// The HTTPS pair serves NATS too when no NATS pair is given.
	h := startNATSHubTLS(t, certFile, keyFile)
	if info := natsInfo(t, h); !strings.Contains(info, `"tls_required":true`) || strings.Contains(info, `"jetstream":true`) {
		t.Fatalf("NATS INFO with --tls-cert/--tls-key only: %q", info)
	}
}

// natsInfo returns the INFO line a NATS server sends a new connection.
func natsInfo(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	info, _ := bufio.NewReader(conn).ReadString('\n')
	return info
}

// startNATSHubTLS runs a hub with only the HTTPS key pair and returns its
// NATS address.
func startNATSHubTLS(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	natsAddr := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", NATSListen: natsAddr,
			TLSCert: certFile, TLSKey: keyFile, Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { ready <- a }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return natsAddr
}

// `pullgate-hub nats-config --tls-cert --tls-key` gives an external NATS
// server TLS for agents and the hub user's narrowed rights; the hub then
// connects with --nats-url tls://... --nats-ca, and an agent enrols over
// TLS. The block is read by nats-server's own configuration parser.
func TestExternalNATSWithTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testtls.SelfSigned(t, dir)
	data := filepath.Join(dir, "data")
	cmd := NATSConfigCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--data", data, "--tls-cert", certFile, "--tls-key", keyFile})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	port := testupstream.FreePort(t)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: \"127.0.0.1:%d\"\n%s", port, out.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the block: %v\n%s", err, out.String())
	}
	opts.NoSigs, opts.NoLog = true, true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	natsURL := fmt.Sprintf("tls://127.0.0.1:%d", port)

	// Without the CA the hub refuses the server's certificate.
	err = Run(context.Background(), Config{DataDir: data, Listen: "127.0.0.1:0", NATSURL: natsURL, TokenTTL: time.Minute,
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("hub to a TLS NATS without --nats-ca: %v", err)
	}
	h := &natsHub{data: data, logs: &testlog.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: data, Listen: "127.0.0.1:0", NATSURL: natsURL, NATSCA: certFile, TokenTTL: time.Minute,
			Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Ready: func(a string) { ready <- a }})
	}()
	select {
	case a := <-ready:
		h.url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	join := h.joinToken(t)
	rep, err := hubclient.Enrol(context.Background(), natsURL, join, wire.EnrolRequest{NodeName: "n"}, hubclient.WithCA(certFile))
	if err != nil || rep.NodeID == "" {
		t.Fatalf("enrol through the external TLS server: %+v %v\n%s", rep, err, h.logs.String())
	}
}
