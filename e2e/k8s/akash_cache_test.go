//go:build e2e_k8s

package k8s

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/pkg/akash"
)

// akashCachedImages is issue 15's part 5 on the shared cluster: two lease
// namespaces named and labelled as the provider makes them, each served by
// an install bound to it explicitly, provider-shaped Deployments
// (IfNotPresent, no service-account token mounted). Tenant B's pod naming
// tenant A's image, which is on the node, does not start: the kubelet's
// AlwaysVerify (KEP-2535) asks the credential provider for B's own
// credentials first, and the hub refuses them for A's image.
func akashCachedImages(t *testing.T, c *cluster, pg *hubCLI, appA, toolB string) {
	provider := newAkashKey(t).address
	la := akash.LeaseID{Owner: newAkashKey(t).address, DSeq: 5001, GSeq: 1, OSeq: 1, Provider: provider}
	lb := akash.LeaseID{Owner: newAkashKey(t).address, DSeq: 5002, GSeq: 1, OSeq: 1, Provider: provider}
	nsA, nsB := c.leaseNamespace(la, "1"), c.leaseNamespace(lb, "1")
	pg.must("", "install", "create", "-w", "acme", "--name", "lease-a", "--cluster", "provider-1", "--namespace", nsA, "--repo", "registry-a.corp/team/*")
	pg.must("", "install", "create", "-w", "beta", "--name", "lease-b", "--cluster", "provider-1", "--namespace", nsB, "--repo", "registry-b.corp/other/*")

	// The installs reach the agent over NATS: the first pull may come
	// before them, and the Deployment's pod retries.
	c.create("/apis/apps/v1/namespaces/"+nsA+"/deployments", providerDeployment(la, "web", appA, "1", false))
	t.Logf("lease A, own image: %v", c.waitRunning(nsA, c.deploymentPod(nsA, "web", "").Name, time.Now(), 2*time.Minute))
	c.create("/apis/apps/v1/namespaces/"+nsB+"/deployments", providerDeployment(lb, "tool", toolB, "1", false))
	t.Logf("lease B, own image: %v", c.waitRunning(nsB, c.deploymentPod(nsB, "tool", "").Name, time.Now(), 2*time.Minute))

	if !slices.Contains(c.nodeImages(), appA) {
		t.Fatalf("%s is not on the node: %v", appA, c.nodeImages())
	}
	o, p := c.runDeployment(providerDeployment(lb, "steal", appA, "1", false))
	if o.running || !isAuthError(o.message) {
		t.Fatalf("lease B's pod %s with lease A's cached image %s (IfNotPresent): want a pull refused for authorisation, got %v", p.Name, appA, o)
	}
	if p.Spec.Containers[0].ImagePullPolicy != "IfNotPresent" || p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		t.Fatalf("not a provider-shaped pod: %+v", p.Spec)
	}
	t.Logf("lease B, lease A's cached image, IfNotPresent: %v", o)

	// An honest grep: a password planted in a provider-shaped
	// docker-creds Secret is found, in the API and in kine's database.
	planted := newAkashKey(t).hex[:32]
	c.create("/api/v1/namespaces/"+nsB+"/secrets", dockerCredsSecret(lb, "planted", "1", "ghcr.io", "user", planted))
	start := time.Now()
	hits := c.grepClusterState(planted)
	t.Logf("FIGURE grepClusterState (API objects of every kind + every file of the cluster dir): %v", time.Since(start).Round(time.Millisecond))
	var inAPI, inKine bool
	for _, h := range hits {
		inAPI = inAPI || h == "api /api/v1/secrets "+nsB+"/docker-creds-planted"
		inKine = inKine || strings.HasPrefix(h, "file kine.db")
	}
	if !inAPI || !inKine {
		t.Fatalf("grepClusterState of a password planted in a Secret: %v, want the Secret and kine.db", hits)
	}
	if hits := c.grepClusterState(newAkashKey(t).hex[:32]); len(hits) != 0 {
		t.Fatalf("grepClusterState of a password used nowhere: %v", hits)
	}

	// Leave nothing for the later steps.
	c.deleteNamespace(nsA)
	c.deleteNamespace(nsB)
	pg.must("", "install", "delete", "-w", "acme", "lease-a")
	pg.must("", "install", "delete", "-w", "beta", "lease-b")
}
