package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/agent"
	"github.com/pullgate/pullgate/agent/agenttest"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/jointoken"
	"github.com/pullgate/pullgate/pkg/wire"
)

// A workspace with an enrolled node is not deleted by accident; deleted
// with force, its cluster goes too and the node, a real agent over the
// embedded NATS, stops being served and is refused by the hub: nothing is
// left enrolled and ready (issue 11, item 3).
func TestWorkspaceDeleteTakesEnrolledNode(t *testing.T) {
	h := startNATSHub(t, Config{})
	join := h.joinToken(t)
	a := agenttest.Start(t, agenttest.Config{NATSURL: "nats://" + h.natsAddr, Join: jointoken.Static(join),
		Options: []agent.Option{agent.WithHubOptions(hubclient.WithInsecurePlaintext(true)), agent.WithExternalMirrors("registry.example.com")}})
	a.WaitReady(t)
	if _, err := a.Ask(wire.CredentialsRequest{Image: "registry.example.com/team/app:1"}); err != nil {
		t.Fatalf("token before the delete: %v\n%s", err, a.Logs.String())
	}

	del := func(query string) (int, string) {
		tok, err := os.ReadFile(filepath.Join(h.data, "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(context.Background(), "DELETE", h.url+"/api/v1/workspaces/acme"+query, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := del(""); code != http.StatusConflict || !strings.Contains(body, "1 cluster(s) (edge, 1 node(s))") {
		t.Fatalf("delete without force: %d %s", code, body)
	}
	if _, err := a.Ask(wire.CredentialsRequest{Image: "registry.example.com/team/app:2"}); err != nil {
		t.Fatalf("token after the refused delete: %v", err)
	}
	code, body := del("?force=true")
	if code != http.StatusOK || !strings.Contains(body, `"clusters":[{"name":"edge","nodes":1}]`) || !strings.Contains(body, `"installs":["web"]`) {
		t.Fatalf("forced delete: %d %s", code, body)
	}
	agenttest.Eventually(t, 20*time.Second, func() bool {
		ok, why := a.Agent.Ready()
		return !ok && strings.Contains(why, "the hub refuses this node")
	}, "agent refused by the hub after its workspace was deleted")
	if _, err := a.Ask(wire.CredentialsRequest{Image: "registry.example.com/team/app:3"}); err == nil {
		t.Fatal("the agent still hands out tokens for a deleted workspace")
	}
	if cs, _ := h.api(t, "GET", "/api/v1/clusters", nil)["clusters"].([]any); len(cs) != 0 {
		t.Fatalf("clusters after the delete: %v", cs)
	}
}
