package cli

import (
	"context"
	"strings"
	"testing"
)

// The CLI side of issue 11, items 3 to 5 and 11: what an operator sees when
// an action would remove, re-route or grant more than the command says.

func TestWorkspaceDeleteForce(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	h.ok("", "workspace", "create", "acme")
	h.ok(secret(), "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io", "--username", "bot", "--password-stdin")
	h.ok("", "cluster", "create", "edge", "-w", "acme")
	h.ok("", "install", "create", "-w", "acme", "--name", "web", "--all-repos", "--cluster", "edge")

	code, out, errOut := h.run("", "workspace", "delete", "acme")
	if code != 1 || out != "" {
		t.Fatalf("delete in use: exit %d %q %q", code, out, errOut)
	}
	for _, want := range []string{"409 Conflict", "1 install(s) (web)", "1 cluster(s) (edge, 0 node(s))", "1 registry credential(s) (gh)", "--force"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal %q does not say %q", errOut, want)
		}
	}
	if _, err := h.st.GetWorkspace(ctx, "acme"); err != nil {
		t.Fatalf("refused delete removed the workspace: %v", err)
	}

	code, out, errOut = h.run("", "workspace", "delete", "acme", "--force")
	if code != 0 || !strings.Contains(out, `workspace "acme" deleted`) {
		t.Fatalf("forced delete: exit %d %q %q", code, out, errOut)
	}
	for _, want := range []string{"deleted installs (their tokens stopped working): web", "deleted clusters (their nodes can no longer connect): edge (0 node(s))", "deleted registry credentials: gh"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("forced delete stderr %q does not say %q", errOut, want)
		}
	}
	if _, err := h.st.GetCluster(ctx, "edge"); err == nil {
		t.Fatal("the workspace's cluster outlived it")
	}
	// -o json carries the same lists.
	h.ok("", "workspace", "create", "beta")
	h.ok("", "install", "create", "-w", "beta", "--name", "x", "--all-repos")
	if out := h.ok("", "workspace", "delete", "beta", "--force", "-o", "json"); !strings.Contains(out, `"installs": [`) || !strings.Contains(out, `"x"`) {
		t.Fatalf("json: %s", out)
	}
}

func TestRegistryAddDuplicateAndReroute(t *testing.T) {
	h := newHub(t)
	h.ok("", "workspace", "create", "acme")
	right, wrong := secret(), secret()
	h.ok(right, "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io", "--username", "bot", "--password-stdin")
	h.ok("", "install", "create", "-w", "acme", "--name", "web", "--repo", "ghcr.io/acme/*")

	code, _, errOut := h.run(wrong, "registry", "add", "-w", "acme", "--name", "gh2", "--host", "ghcr.io", "--username", "bot", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, `registry credential "gh" of workspace "acme" already has host ghcr.io`) {
		t.Fatalf("duplicate: exit %d %s", code, errOut)
	}
	if cs, _ := h.st.ListCredentials(context.Background(), "acme"); len(cs) != 1 {
		t.Fatalf("duplicate stored: %+v", cs)
	}
	code, _, errOut = h.run(secret(), "registry", "add", "-w", "acme", "--name", "gh-acme", "--host", "ghcr.io/acme", "--username", "bot", "--password-stdin")
	if code != 0 || !strings.Contains(errOut, `warning: registry "gh-acme": pulls under ghcr.io/acme now use registry "gh-acme" instead of "gh" (ghcr.io), for installs web (ghcr.io/acme/*)`) {
		t.Fatalf("re-route: exit %d %s", code, errOut)
	}
}

func TestInstallReposExplicitAndBinding(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	h.ok("", "workspace", "create", "acme")
	h.ok("", "workspace", "create", "beta")
	h.ok(secret(), "registry", "add", "-w", "acme", "--name", "gh", "--host", "ghcr.io", "--username", "bot", "--password-stdin")

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"install", "create", "-w", "acme", "--name", "web"}, "needs --repo patterns or --all-repos"},
		{[]string{"install", "create", "-w", "acme", "--name", "web", "--repo", "ghcr.io/a/*", "--all-repos"}, "--repo and --all-repos exclude each other"},
		{[]string{"install", "update", "-w", "acme", "web"}, "needs --repo patterns or --all-repos, or --cluster, --namespace, --service-account or --akash"},
	} {
		if code, _, errOut := h.run("", tc.args...); code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d %s", tc.args, code, errOut)
		}
	}
	if ins, _ := h.st.ListInstalls(ctx, "acme"); len(ins) != 0 {
		t.Fatalf("refused create stored %+v", ins)
	}

	// A typo in the host is warned about, the install still created.
	code, _, errOut := h.run("", "install", "create", "-w", "acme", "--name", "web", "--repo", "ghrc.io/acme/*")
	if code != 0 || !strings.Contains(errOut, `warning: install "web": repository pattern ghrc.io/acme/*: no registry credential of workspace "acme" covers it (it has ghcr.io)`) {
		t.Fatalf("typo: exit %d %s", code, errOut)
	}
	code, _, errOut = h.run("", "install", "update", "-w", "acme", "web", "--repo", "ghcr.io/acme/*")
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("fixed typo: exit %d %s", code, errOut)
	}

	// Binding an existing install to a cluster, with create's checks.
	h.ok("", "cluster", "create", "edge", "-w", "acme")
	h.ok("", "cluster", "create", "beta-edge", "-w", "beta")
	h.ok("", "cluster", "create", "shared")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--cluster", "nope"}, `cluster "nope" does not exist`},
		{[]string{"--cluster", "beta-edge"}, `cluster "beta-edge" belongs to workspace "beta"`},
		{[]string{"--cluster", "shared"}, `the install needs --namespace`},
	} {
		if code, _, errOut := h.run("", append([]string{"install", "update", "-w", "acme", "web"}, tc.args...)...); code != 1 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d %s", tc.args, code, errOut)
		}
	}
	out := h.ok("", "install", "update", "-w", "acme", "web", "--cluster", "edge")
	if !strings.Contains(out, "cluster: edge") || !strings.Contains(out, "repos: ghcr.io/acme/*") {
		t.Fatalf("bind: %s", out)
	}
	if in, _ := h.st.GetInstall(ctx, "acme", "web"); in.Cluster != "edge" {
		t.Fatalf("stored binding %+v", in)
	}
	out = h.ok("", "install", "update", "-w", "acme", "web", "--cluster", "shared", "--namespace", "shop")
	if !strings.Contains(out, "cluster: shared, namespace: shop") {
		t.Fatalf("move: %s", out)
	}
	out = h.ok("", "install", "update", "-w", "acme", "web", "--cluster", "")
	if !strings.Contains(out, "cluster: -") {
		t.Fatalf("unbind: %s", out)
	}
}
