package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testsa"
)

func TestClusterJoinTokensAndDelete(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	join := strings.TrimSpace(h.ok("", "cluster", "create", "edge", "-w", "acme", "--join-token-uses", "1", "--join-token-ttl", "2h"))
	if !strings.HasPrefix(join, "pgj1.") {
		t.Fatalf("join token %q", join)
	}
	if out := h.ok("", "cluster", "list"); !strings.Contains(out, "1 use(s) left, expires") || !strings.Contains(out, "JOIN TOKEN") {
		t.Fatalf("cluster list:\n%s", out)
	}
	code, out, errOut := h.run("", "cluster", "rotate-join-token", "edge", "--uses", "3")
	if code != 0 || !strings.HasPrefix(out, "pgj1.") || !strings.Contains(errOut, "3 use(s) left") {
		t.Fatalf("rotate: %d %s %s", code, out, errOut)
	}
	h.ok("", "cluster", "rotate-join-token", "edge")
	if out := h.ok("", "cluster", "list"); !strings.Contains(out, "reusable") {
		t.Fatalf("cluster list after a plain rotate:\n%s", out)
	}
	for _, args := range [][]string{
		{"cluster", "create", "x", "--join-token-uses", "-1"},
		{"cluster", "rotate-join-token", "edge", "--ttl", "-1h"},
		{"cluster", "jwks", "set", "edge"},
	} {
		if code, _, errOut := h.run("", args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}

	h.ok("", "install", "create", "-w", "acme", "--name", "web", "--all-repos", "--cluster", "edge")
	code, _, errOut = h.run("", "cluster", "delete", "edge")
	if code != 1 || !strings.Contains(errOut, "acme/web") || !strings.Contains(errOut, "force") {
		t.Fatalf("delete with installs: %d %s", code, errOut)
	}
	code, out, errOut = h.run("", "cluster", "delete", "edge", "--force")
	if code != 0 || !strings.Contains(out, `cluster "edge" deleted`) || !strings.Contains(errOut, "acme/web") {
		t.Fatalf("forced delete: %d %s %s", code, out, errOut)
	}
	if out := h.ok("", "install", "get", "-w", "acme", "web", "-o", "json"); !strings.Contains(out, `"cluster": ""`) {
		t.Fatalf("install after forced delete: %s", out)
	}
}

func TestClusterJWKSCommands(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	a, b := testsa.New(t), testsa.New(t)
	h.ok("", "cluster", "create", "shared")
	if out := h.ok("", "cluster", "jwks", "show", "shared"); !strings.Contains(out, "approved keys: none") || !strings.Contains(out, "proposal: none") {
		t.Fatalf("show: %s", out)
	}
	// An agent proposes key A (as the token service records it).
	c, _ := h.st.GetCluster(ctx, "shared")
	n, _ := h.st.CreateNode(ctx, c.ID, "worker-1", []byte("h"))
	if err := h.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: a.JWKS(), NodeID: n.ID}); err != nil {
		t.Fatal(err)
	}
	var keys api.ClusterKeys
	if err := json.Unmarshal([]byte(h.ok("", "cluster", "jwks", "show", "shared", "-o", "json")), &keys); err != nil || keys.Proposal == nil || len(keys.Proposal.Keys) != 1 {
		t.Fatalf("show json: %+v", keys)
	}
	tp := keys.Proposal.Keys[0].Thumbprint
	out := h.ok("", "cluster", "jwks", "show", "shared")
	if !strings.Contains(out, tp) || !strings.Contains(out, n.ID+" (worker-1)") || !strings.Contains(out, "--thumbprint "+tp) {
		t.Fatalf("show: %s", out)
	}
	if out := h.ok("", "cluster", "list"); !strings.Contains(out, "none, proposal pending") {
		t.Fatalf("list: %s", out)
	}
	if code, _, errOut := h.run("", "cluster", "jwks", "approve", "shared", "--thumbprint", "wrong", "--issuer", testsa.DefaultIssuer); code != 1 || !strings.Contains(errOut, "thumbprints") {
		t.Fatalf("approve wrong thumbprint: %d %s", code, errOut)
	}
	h.ok("", "cluster", "jwks", "approve", "shared", "--thumbprint", tp, "--issuer", testsa.DefaultIssuer)
	if c, _ := h.st.GetCluster(ctx, "shared"); string(c.SAJWKS) == "" || c.SAIssuer != testsa.DefaultIssuer {
		t.Fatalf("after approve: %+v", c)
	}
	// Set replaces them.
	file := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(file, b.JWKS(), 0o600)
	h.ok("", "cluster", "jwks", "set", "shared", "--file", file, "--issuer", "https://issuer.example")
	if c, _ := h.st.GetCluster(ctx, "shared"); string(c.SAJWKS) != string(b.JWKS()) || c.SAIssuer != "https://issuer.example" {
		t.Fatalf("after set: %+v", c)
	}
	if out := h.ok("", "cluster", "list"); !strings.Contains(out, "approved") || strings.Contains(out, "pending") {
		t.Fatalf("list: %s", out)
	}
}
