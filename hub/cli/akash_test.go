package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/pkg/akash"
)

func akashAddr(t *testing.T, seed byte) string {
	t.Helper()
	key := make([]byte, 33)
	key[0], key[1] = 2, seed
	a, err := akash.AddressOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAkashCommands(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	provider, owner := akashAddr(t, 1), akashAddr(t, 2)
	h.ok("", "cluster", "create", "provider-1", "--akash-provider", provider, "--akash-controller", "pullgate:pullgate-akash")
	var cl []api.Cluster
	if err := json.Unmarshal([]byte(h.ok("", "cluster", "list", "-o", "json")), &cl); err != nil || len(cl) != 1 ||
		cl[0].AkashProvider != provider || cl[0].AkashController != "pullgate:pullgate-akash" {
		t.Fatalf("cluster list: %+v %v", cl, err)
	}
	if out := h.ok("", "cluster", "update", "provider-1", "--akash-controller", "pullgate:other"); !strings.Contains(out, "pullgate:other") {
		t.Fatalf("cluster update: %s", out)
	}
	for _, args := range [][]string{
		{"cluster", "update", "provider-1"},
		{"akash", "leases"},
		{"akash", "leases", "--cluster", "provider-1", "-w", "x"},
		{"install", "create", "-w", "x", "--name", "a", "--all-repos", "--akash", "all", "--cluster", "provider-1"},
	} {
		if code, _, errOut := h.run("", args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d %s, want a usage error", args, code, errOut)
		}
	}
	if code, _, errOut := h.run("", "cluster", "update", "provider-1", "--akash-controller", "bad"); code != 1 || !strings.Contains(errOut, "namespace:serviceaccount") {
		t.Fatalf("bad controller: %d %s", code, errOut)
	}

	acct, _, err := h.st.EnsureAkashAccount(ctx, owner, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	h.ok("", "install", "create", "-w", acct.Workspace, "--name", "app", "--all-repos", "--akash", "all")
	if out := h.ok("", "install", "list", "-w", acct.Workspace); !strings.Contains(out, "AKASH") || !strings.Contains(out, "all leases") {
		t.Fatalf("install list:\n%s", out)
	}
	if out := h.ok("", "install", "update", "-w", acct.Workspace, "app", "--akash", "42"); !strings.Contains(out, "dseq 42") {
		t.Fatalf("install update: %s", out)
	}
	if code, _, errOut := h.run("", "install", "update", "-w", acct.Workspace, "app", "--akash", "x"); code != 1 || !strings.Contains(errOut, "akash") {
		t.Fatalf("bad scope: %d %s", code, errOut)
	}

	c, _ := h.st.GetCluster(ctx, "provider-1")
	lease := akash.LeaseID{Owner: owner, DSeq: 42, GSeq: 1, OSeq: 1, Provider: provider}
	if _, err := h.st.PutAkashLease(ctx, c.ID, lease.Namespace(), lease); err != nil {
		t.Fatal(err)
	}
	out := h.ok("", "akash", "leases", "--cluster", "provider-1")
	if !strings.Contains(out, lease.Namespace()) || !strings.Contains(out, "WORKSPACE") || !strings.Contains(out, "tenant") {
		t.Fatalf("akash leases --cluster:\n%s", out)
	}
	var ls []api.AkashLease
	if err := json.Unmarshal([]byte(h.ok("", "akash", "leases", "-w", "tenant", "-o", "json")), &ls); err != nil || len(ls) != 1 ||
		ls[0].Namespace != lease.Namespace() || ls[0].DSeq != 42 || ls[0].Workspace != "" {
		t.Fatalf("akash leases -w -o json: %+v %v", ls, err)
	}
}
