//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// A shared cluster created without keys serves nothing; the keys an agent
// offers become a proposal that the operator sees (with the proposing
// node) and approves by thumbprint; only then do pods get tokens.
func TestSharedClusterKeysNeedApproval(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "approve-SECRET"))
	up.PushRandomImage(t, "tenant-a/app", "v1", 1, 64)
	iss := testsa.New(t)
	h := startHub(t, t.TempDir(), "")
	c := h.cli
	join := strings.TrimSpace(c.must("", "cluster", "create", "akash"))
	c.must("", "workspace", "create", "tenant-a")
	c.must(up.Password+"\n", "registry", "add", "-w", "tenant-a", "--name", "corp", "--host", "registry.corp",
		"--endpoint", up.URL, "--allow-private-network", "--username", up.User, "--password-stdin")
	c.must("", "install", "create", "-w", "tenant-a", "--name", "app", "--cluster", "akash", "--namespace", "ns-a",
		"--repo", "registry.corp/tenant-a/*")
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwks, iss.JWKS(), 0o600)
	a := startAgent(t, h.nats, join, "--sa-jwks", jwks, "--external-mirror-host", "registry.corp")
	k := newKubelet(t, a, "--shared", "--match-image", "registry.corp")
	sa := iss.Token(t, "ns-a", "default", testsa.Opts{})

	if resp, _, _ := k.credentials("registry.corp/tenant-a/app:v1", sa); resp != nil {
		t.Fatal("a shared cluster without approved keys served a token")
	}
	type keys struct {
		Approved *struct{} `json:"approved"`
		Proposal *struct {
			Keys []struct {
				Thumbprint string `json:"thumbprint"`
			} `json:"keys"`
			ProposedByName string `json:"proposed_by_name"`
		} `json:"proposal"`
	}
	var got keys
	waitFor(t, 10*time.Second, "the agent's keys proposed", func() bool {
		got = keys{}
		json.Unmarshal([]byte(c.must("", "cluster", "jwks", "show", "akash", "-o", "json")), &got)
		return got.Proposal != nil
	})
	if got.Approved != nil || len(got.Proposal.Keys) != 1 || got.Proposal.ProposedByName != "worker-1" {
		t.Fatalf("keys: %+v", got)
	}
	if out := c.must("", "cluster", "list"); !strings.Contains(out, "proposal pending") {
		t.Fatalf("cluster list: %s", out)
	}
	c.must("", "cluster", "jwks", "approve", "akash", "--thumbprint", got.Proposal.Keys[0].Thumbprint, "--issuer", testsa.DefaultIssuer)
	tok := k.mustToken("registry.corp/tenant-a/app:v1", sa, "registry.corp")
	if code := mirrorGet(t, h.addr, "registry.corp", "tenant-a/app", "v1", tok); code != http.StatusOK {
		t.Fatalf("pull after approval: %d", code)
	}
}
