package agent_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/agenttest/hubfake"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/pkg/wire"
)

// A token for an image named by its upstream host ("ghcr.io/a/app") is
// handed out only when the node routes that host to the hub; otherwise
// the runtime would send it to the upstream itself. Path-prefix images
// (HUB/ghcr.io/a/app) always go to the hub. The hub serves every image
// here: a refusal is the agent's.
func TestMirrorFormOnlyForRoutedHosts(t *testing.T) {
	hubForm := func(img string) string { return hubfake.HubHost + "/" + img }
	for _, tc := range []struct {
		name     string
		mirrors  bool     // the agent keeps containerd hosts.toml files
		enable   []string // --mirror-host
		external []string // --external-mirror-host
		foreign  string   // an operator's own hosts.toml for this host
		omit     bool     // the hub does not list hosts (nothing mirrored yet)
		ready    string   // wait for this host's managed hosts.toml
		answered []string
		refused  []string
	}{
		{name: "no mirrors",
			answered: []string{hubForm("ghcr.io/a/app:1"), hubForm("registry.corp/b/app")},
			refused:  []string{"ghcr.io/a/app:1", "ghcr.io", "registry.corp/b/app", "registry.corp"}},
		{name: "mirror-host ghcr.io", mirrors: true, enable: []string{"ghcr.io"}, ready: "ghcr.io",
			// A bare host is a docker-credential-helper request: its users
			// (podman, skopeo) do not read containerd's hosts.toml.
			answered: []string{"ghcr.io/a/app:1", hubForm("registry.corp/b/app")},
			refused:  []string{"registry.corp/b/app", "registry.corp", "ghcr.io"}},
		{name: "operator file", mirrors: true, foreign: "ghcr.io", ready: "registry.corp",
			answered: []string{"registry.corp/b/app", hubForm("ghcr.io/a/app")},
			refused:  []string{"ghcr.io/a/app", "ghcr.io"}},
		{name: "no hosts yet", mirrors: true, omit: true,
			answered: []string{hubForm("ghcr.io/a/app")},
			refused:  []string{"ghcr.io/a/app", "registry.corp/b/app"}},
		{name: "external mirror", external: []string{"REGISTRY.corp"},
			answered: []string{"registry.corp/b/app", "registry.corp"},
			refused:  []string{"ghcr.io/a/app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubfake.New(t)
			hub.OmitHosts(tc.omit)
			cl := hub.AddCluster("c", false)
			hub.AddInstall(hubfake.Install{Workspace: "w", ClusterID: cl.ID, Repos: []string{"ghcr.io/a"}})
			hub.AddInstall(hubfake.Install{Workspace: "w2", ClusterID: cl.ID, Repos: []string{"registry.corp/b"}})
			dir := filepath.Join(t.TempDir(), "certs.d")
			var opts []agent.Option
			if tc.mirrors {
				opts = append(opts, agent.WithContainerdMirrors(agent.MirrorConfig{ConfigPath: dir, HubURL: "http://127.0.0.1:5000", Hosts: tc.enable}))
			}
			if tc.foreign != "" {
				if err := os.MkdirAll(filepath.Join(dir, tc.foreign), 0o755); err != nil {
					t.Fatal(err)
				}
				own := "server = \"https://" + tc.foreign + "\"\n"
				if err := os.WriteFile(filepath.Join(dir, tc.foreign, "hosts.toml"), []byte(own), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts = append(opts, agent.WithExternalMirrors(tc.external...))
			r := agenttest.Start(t, agenttest.Config{NATSURL: hub.URL(), Join: jointoken.Static(cl.JoinToken), Options: opts})
			r.WaitReady(t)
			switch {
			case tc.ready != "":
				agenttest.Eventually(t, 5*time.Second, func() bool {
					b, err := os.ReadFile(filepath.Join(dir, tc.ready, "hosts.toml"))
					return err == nil && strings.HasPrefix(string(b), "# managed by pullgate-agent")
				}, "mirror of "+tc.ready+" written")
			case tc.omit:
				agenttest.Eventually(t, 5*time.Second, func() bool {
					return strings.Contains(r.Logs.String(), "does not report upstream hosts")
				}, "first sync without hosts")
			}
			var tokens []string
			for _, img := range tc.answered {
				c, err := r.Ask(wire.CredentialsRequest{Image: img})
				if err != nil {
					t.Errorf("%s: %v", img, err)
					continue
				}
				tokens = append(tokens, c.Password)
				if want, _, _ := strings.Cut(img, "/"); c.Registry != want {
					t.Errorf("%s: auth key %q, want %q", img, c.Registry, want)
				}
			}
			for _, img := range tc.refused {
				before := hub.TokenRequests.Load()
				c, err := r.Ask(wire.CredentialsRequest{Image: img})
				if err == nil {
					tokens = append(tokens, c.Password)
					t.Errorf("%s: answered with a token for %s, which this node does not route to the hub", img, c.Registry)
					continue
				}
				if status(err) != http.StatusNotFound || !strings.Contains(err.Error(), "do not go through the pullgate hub") {
					t.Errorf("%s: %v (HTTP %d), want 404 naming the routing", img, err, status(err))
				}
				if hub.TokenRequests.Load() == before {
					t.Errorf("%s: the hub was not asked (the test wants the hub to serve it and the agent to refuse)", img)
				}
			}
			agenttest.NoSecrets(t, r.Logs.String(), append(tokens, cl.JoinToken)...)
		})
	}
}
