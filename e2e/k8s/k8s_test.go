//go:build e2e_k8s

package k8s

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// The hub's ports on the node (hostNetwork: the chart's container ports,
// in the suite's own network namespace).
const (
	hubAddr  = "127.0.0.1:5080"
	natsAddr = "127.0.0.1:4222"
)

// hubCLI runs bin/pullgate-hub against the hub in the cluster.
type hubCLI struct {
	t         *testing.T
	bin, dir  string
	tokenFile string
}

func (h *hubCLI) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(h.bin, append([]string{"--hub", "http://" + hubAddr, "--token-file", h.tokenFile}, args...)...)
	cmd.Dir = h.dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("pullgate-hub %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (h *hubCLI) must(stdin string, args ...string) string {
	h.t.Helper()
	out, err := h.run(stdin, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// helm runs helm against the cluster.
func (c *cluster) helm(args ...string) string {
	c.t.Helper()
	return run(c.t, testupstream.RepoRoot(c.t), []string{"KUBECONFIG=" + c.kubeconfig, "HELM_CACHE_HOME=" + c.dir + "/helm/cache",
		"HELM_CONFIG_HOME=" + c.dir + "/helm/config", "HELM_DATA_HOME=" + c.dir + "/helm/data"},
		filepath.Join(c.bin, "helm"), args...)
}

// waitReady waits until the pods of ns whose name starts with prefix are
// all Ready (at least one).
func (c *cluster) waitReady(ns, prefix string, d time.Duration) corev1.Pod {
	c.t.Helper()
	var ready corev1.Pod
	waitFor(c.t, d, "pod "+ns+"/"+prefix+"* ready", func() (bool, error) {
		if err := c.kubelet.alive(); err != nil {
			c.t.Fatal(err)
		}
		for _, p := range c.pods(ns) {
			if !strings.HasPrefix(p.Name, prefix) || p.DeletionTimestamp != nil {
				continue
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready = p
					return true, nil
				}
			}
			b, _ := json.Marshal(p.Status)
			return false, fmt.Errorf("%s: %s", p.Name, b)
		}
		return false, nil
	})
	return ready
}

func TestKubernetes(t *testing.T) {
	root := testupstream.RepoRoot(t)
	hubBin := filepath.Join(root, "bin", "pullgate-hub")
	if _, err := os.Stat(hubBin); err != nil {
		t.Fatal("no bin/pullgate-hub: run make build (make e2e-k8s does)")
	}
	cacheBin(t)
	nodeIP := os.Getenv("PULLGATE_K8S_NODE_IP")
	if nodeIP == "" {
		t.Fatal("run the suite with make e2e-k8s: it runs in a network namespace of its own (e2e/k8s/netns.sh)")
	}
	start := time.Now()

	// The project's images, as `make images` builds them, in a local
	// registry the node pulls from (no internet here).
	images := testupstream.StartDistribution(t, testupstream.ProcNoAuth())
	version := "0.0.0-e2e"
	run(t, root, nil, "make", "images", "REGISTRY="+images.Host+"/pullgate", "ARCHS=amd64", "VERSION="+version, "DIST="+t.TempDir())
	bin := sleeper(t)
	pause := images.Host + "/pause:1"
	push(t, pause, runnable(t, bin, 0), nil)
	public := images.Host + "/public/app:v1" // a public image of a host the node does not mirror
	push(t, public, runnable(t, bin, 0), nil)

	// Two tenants' private upstreams (distribution with htpasswd).
	upA := testupstream.StartDistribution(t)
	upB := testupstream.StartDistribution(t)
	for _, r := range []struct {
		up  *testupstream.Registry
		ref string
		pad int64
	}{
		{upA, "team/app:v1", 1 << 20}, {upA, "team/other:v1", 1 << 20}, {upA, "team/big:v1", 64 << 20},
		{upA, "team/direct:v1", 64 << 20}, {upB, "other/tool:v1", 1 << 20},
	} {
		push(t, r.up.Host+"/"+r.ref, runnable(t, bin, r.pad), r.up.Auth())
	}
	t.Logf("images built and pushed in %v", time.Since(start).Round(time.Second))

	c := startCluster(t, pause, nodeIP)
	t.Logf("cluster up after %v", time.Since(start).Round(time.Second))
	chart := filepath.Join(root, "packaging", "helm", "pullgate")
	// Steps build on each other: stop at the first failure.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	// 1. The chart, installed for real: the hub release, as the README
	// says, plus what this node needs (local images, no pod network: host
	// network, no PVC provisioner, a not-ready node).
	var pg *hubCLI
	agentDir := c.dir + "/agent"
	kubeletDir := agentDir + "/kubelet"
	providerFlags := []string{"--image-credential-provider-bin-dir=" + kubeletDir + "/bin",
		"--image-credential-provider-config=" + kubeletDir + "/config/credential-provider.yaml"}
	agentValues := func(stateDir string) []string {
		return []string{"--set", "agent.image.repository=" + images.Host + "/pullgate/pullgate-agent", "--set", "agent.image.tag=" + version,
			"--set", "agent.hostNetwork=true", "--set", "agent.stateDir=" + stateDir, "--set", "agent.socketDir=" + agentDir + "/run",
			"--set", "agent.logFormat=text",
			"--set", "agent.kubelet.preset=custom", "--set", "agent.kubelet.binDir=" + kubeletDir + "/bin",
			"--set", "agent.kubelet.configPath=" + kubeletDir + "/config/credential-provider.yaml", "--set", "agent.kubelet.mountConfigDir=true",
			"--set", "agent.removeRevokedImages.enabled=true", "--set", "agent.removeRevokedImages.criSocket=" + c.ctrSock}
	}
	step("chart", func(t *testing.T) {
		c.t = t
		c.helm([]string{"install", "pullgate", chart, "-n", "pullgate", "--create-namespace",
			"--set", "agent.enabled=false", "--set", "hub.publicURL=http://" + hubAddr,
			// this node:
			"--set", "hub.image.repository=" + images.Host + "/pullgate/pullgate-hub", "--set", "hub.image.tag=" + version,
			"--set", "hub.hostNetwork=true", "--set", "hub.persistence.enabled=false", "--set", "hub.logFormat=text",
			"--set", "hub.tolerations[0].operator=Exists", "--set", "hub.nats.tls.ipAddresses={127.0.0.1}",
			// Issue 15: Akash tenants' self-service and the opt-in import
			// (set at install: the hub's data is in an emptyDir here).
			"--set", "hub.akash.tenants=true", "--set", "hub.akash.importCredentials=true"}...)
		hubPod := c.waitReady("pullgate", "pullgate-hub", 5*time.Minute)
		t.Logf("hub pod %s ready after %v", hubPod.Name, time.Since(start).Round(time.Second))
		// `kubectl exec deploy/pullgate-hub -- pullgate-hub --token-file
		// /var/lib/pullgate/admin.token ...`: no kubectl here, so the same
		// CLI runs on the node with the token from the pod's data volume.
		tokens, _ := filepath.Glob(filepath.Join(c.dir, "kubelet", "pods", string(hubPod.UID), "volumes", "kubernetes.io~empty-dir", "data", "admin.token"))
		if len(tokens) != 1 {
			t.Fatalf("admin token of the hub pod not found: %v", tokens)
		}
		pg = &hubCLI{t: t, bin: hubBin, dir: c.dir, tokenFile: tokens[0]}

		// `kubectl -n pullgate get secret pullgate-hub-nats-tls -o
		// jsonpath='{.data.ca\.crt}'` and `kubectl create configmap
		// pullgate-nats-ca --from-file=ca.crt=nats-ca.crt`.
		var sec corev1.Secret
		if err := c.get("/api/v1/namespaces/pullgate/secrets/pullgate-hub-nats-tls", &sec); err != nil {
			t.Fatal(err)
		}
		c.create("/api/v1/namespaces/pullgate/configmaps", &corev1.ConfigMap{TypeMeta: meta("v1", "ConfigMap"),
			ObjectMeta: objMeta("pullgate-nats-ca", "pullgate"), Data: map[string]string{"ca.crt": string(sec.Data["ca.crt"])}})
	})

	// 2. Tenancy on a shared cluster with real service-account tokens.
	hubImg := func(_ *testupstream.Registry, host, ref string) string { return hubAddr + "/" + host + "/" + ref }
	step("tenancy", func(t *testing.T) {
		c.t, pg.t = t, t
		pg.must("", "workspace", "create", "acme")
		pg.must("", "workspace", "create", "beta")
		pg.must(upA.Password+"\n", "registry", "add", "-w", "acme", "--name", "a", "--host", "registry-a.corp",
			"--endpoint", upA.URL, "--allow-private-network", "--username", upA.User, "--password-stdin")
		pg.must(upB.Password+"\n", "registry", "add", "-w", "beta", "--name", "b", "--host", "registry-b.corp",
			"--endpoint", upB.URL, "--allow-private-network", "--username", upB.User, "--password-stdin")
		// `kubectl get --raw /openid/v1/jwks` and the issuer of
		// /.well-known/openid-configuration.
		code, jwks, err := c.raw("GET", "/openid/v1/jwks", nil)
		if err != nil || code != 200 {
			t.Fatalf("jwks: %d %v", code, err)
		}
		var oidc struct{ Issuer string }
		if err := c.get("/.well-known/openid-configuration", &oidc); err != nil {
			t.Fatal(err)
		}
		writeFile(t, c.dir+"/jwks.json", string(jwks), 0o644)
		join := strings.TrimSpace(pg.must("", "cluster", "create", "provider-1", "--sa-jwks", c.dir+"/jwks.json", "--sa-issuer", oidc.Issuer))
		pg.must("", "install", "create", "-w", "acme", "--name", "web", "--cluster", "provider-1", "--namespace", "tenant-a", "--repo", "registry-a.corp/team/*")
		pg.must("", "install", "create", "-w", "beta", "--name", "tool", "--cluster", "provider-1", "--namespace", "tenant-b", "--repo", "registry-b.corp/other/*")

		// The agent release, as the README's "Kubernetes (Helm)" and
		// "Shared clusters" sections say.
		c.helm(append([]string{"install", "pullgate-agent", chart, "-n", "pullgate", "--create-namespace",
			"--set", "hub.enabled=false", "--set", "agent.natsURL=tls://" + natsAddr,
			"--set", "agent.natsCA.configMapName=pullgate-nats-ca", "--set", "agent.joinToken.value=" + join,
			"--set", "agent.kubelet.shared=true", "--set", "agent.kubelet.matchImages={" + hubAddr + "}"},
			agentValues(agentDir+"/state-shared")...)...)
		c.waitReady("pullgate", "pullgate-agent", 3*time.Minute)
		for _, f := range []string{kubeletDir + "/bin/pullgate-credential-provider", kubeletDir + "/config/credential-provider.yaml"} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("the init container did not install %s: %v", f, err)
			}
		}
		// "start the kubelet once with --image-credential-provider-bin-dir
		// and --image-credential-provider-config pointing at those paths
		// ... then restart the kubelet".
		c.restartKubelet(providerFlags...)

		c.namespace("tenant-a")
		c.namespace("tenant-b")
		t.Logf("tenant-a, own image: %v", c.mustRun(testPod("tenant-a", "a1", hubImg(upA, "registry-a.corp", "team/app:v1"), corev1.PullAlways)))
		t.Logf("tenant-b, own image: %v", c.mustRun(testPod("tenant-b", "b1", hubImg(upB, "registry-b.corp", "other/tool:v1"), corev1.PullAlways)))
		t.Logf("tenant-b asking for tenant-a's image: %v", c.mustBeRefused(testPod("tenant-b", "b-steal", hubImg(upA, "registry-a.corp", "team/other:v1"), corev1.PullAlways)))
		// The same with tenant-a's image already on the node and
		// IfNotPresent: the kubelet's AlwaysVerify (KEP-2535) asks for
		// tenant-b's credentials first.
		t.Logf("tenant-b, tenant-a's cached image, IfNotPresent: %v", c.mustBeRefused(testPod("tenant-b", "b-cached", hubImg(upA, "registry-a.corp", "team/app:v1"), corev1.PullIfNotPresent)))

		// A static pod has no service-account token: nothing.
		writeFile(t, c.staticDir+"/static.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: static, namespace: tenant-a}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: %q, imagePullPolicy: Always}]
`, hubImg(upA, "registry-a.corp", "team/other:v1")), 0o644)
		o := c.waitPod("tenant-a", "static-"+nodeName, time.Now(), 2*time.Minute)
		if o.running || !isAuthError(o.message) {
			t.Fatalf("static pod without a service-account token: %v", o)
		}
		t.Logf("static pod (no service-account token): %v", o)
		os.Remove(c.staticDir + "/static.yaml")

		// Figures: a 64 MiB private image, pod creation to Running, through
		// the hub and from the upstream directly (an image pull secret).
		through := c.mustRun(testPod("tenant-a", "big-hub", hubImg(upA, "registry-a.corp", "team/big:v1"), corev1.PullAlways))
		dockercfg, _ := json.Marshal(map[string]any{"auths": map[string]any{upA.Host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(upA.User + ":" + upA.Password))}}})
		c.create("/api/v1/namespaces/tenant-a/secrets", &corev1.Secret{TypeMeta: meta("v1", "Secret"), ObjectMeta: objMeta("upstream", "tenant-a"),
			Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": dockercfg}})
		dp := testPod("tenant-a", "big-direct", upA.Host+"/team/direct:v1", corev1.PullAlways)
		dp.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "upstream"}}
		direct := c.mustRun(dp)
		t.Logf("FIGURE 64 MiB private image, pod created → Running: through the hub %v, from the upstream directly %v",
			through.took.Round(time.Millisecond), direct.took.Round(time.Millisecond))
	})

	// 4 and 5. Revocation, down to the node's image store.
	step("revocation", func(t *testing.T) {
		c.t, pg.t = t, t
		appA := hubImg(upA, "registry-a.corp", "team/app:v1")
		c.deletePod("tenant-a", "a1")
		c.deletePod("tenant-a", "big-hub")
		base := c.mustRun(testPod("tenant-a", "a2", appA, corev1.PullAlways))
		c.deletePod("tenant-a", "a2")
		if !slices.Contains(c.nodeImages(), appA) {
			t.Fatalf("%s not on the node before the revoke: %v", appA, c.nodeImages())
		}
		pg.must("", "install", "disable", "-w", "acme", "web")
		disabled := time.Now()
		c.create("/api/v1/namespaces/tenant-a/pods", testPod("tenant-a", "a3", appA, corev1.PullAlways))
		o := c.waitPod("tenant-a", "a3", disabled, time.Minute)
		if o.running || !isAuthError(o.message) {
			t.Fatalf("new pod after install disable: %v", o)
		}
		t.Logf("FIGURE install disable returned → next pod's %s: %v (the same pod before the disable: Running after %v) (%s)",
			o.reason, o.took.Round(time.Millisecond), base.took.Round(time.Millisecond), o.message)
		// A pod start costs the same whether its pull is let through or
		// refused: the revoke must not add more than a second to it.
		if o.took > base.took+time.Second {
			t.Errorf("the refusal came %v after install disable; a pod start takes %v", o.took, base.took)
		}
		// --remove-revoked-images: the revoked install's images leave the
		// node; the other tenant's stay.
		waitFor(t, 30*time.Second, "the revoked install's images removed from the node", func() (bool, error) {
			imgs := c.nodeImages()
			for _, ref := range imgs {
				if strings.HasPrefix(ref, hubAddr+"/registry-a.corp/") {
					return false, fmt.Errorf("still there: %v", imgs)
				}
			}
			return true, nil
		})
		if imgs := c.nodeImages(); !slices.Contains(imgs, hubImg(upB, "registry-b.corp", "other/tool:v1")) {
			t.Fatalf("the live install's image was removed too: %v", imgs)
		}
		// A pod of another namespace cannot start from the cached image.
		t.Logf("tenant-b, revoked image, IfNotPresent: %v", c.mustBeRefused(testPod("tenant-b", "b-after", appA, corev1.PullIfNotPresent)))

		pg.must("", "install", "enable", "-w", "acme", "web")
		// The kubelet may still hold the token the disable killed, for at
		// most the helper's --max-cache-duration (30s): it retries.
		enabled := time.Now()
		c.create("/api/v1/namespaces/tenant-a/pods", testPod("tenant-a", "a4", appA, corev1.PullAlways))
		t.Logf("FIGURE install enable returned → new pod Running: %v", c.waitRunning("tenant-a", "a4", enabled, 2*time.Minute))
		// The audit trail names the node (its id, which `cluster node list`
		// maps to the node's name), for the pulls and the refusal.
		var nodes struct {
			Nodes []struct{ ID, Name string }
		}
		raw := strings.TrimSpace(pg.must("", "cluster", "node", "list", "provider-1", "-o", "json"))
		if strings.HasPrefix(raw, "[") {
			raw = `{"nodes":` + raw + "}"
		}
		if err := json.Unmarshal([]byte(raw), &nodes); err != nil {
			t.Fatal(err)
		}
		nodeID := ""
		for _, n := range nodes.Nodes {
			if n.Name == nodeName {
				nodeID = n.ID
			}
		}
		if nodeID == "" {
			t.Fatalf("cluster node list: no %s: %+v", nodeName, nodes)
		}
		var events []map[string]any
		waitFor(t, 10*time.Second, "audit events naming the node", func() (bool, error) {
			events = nil
			if err := json.Unmarshal([]byte(pg.must("", "audit", "-w", "acme", "--since", "all", "-o", "json")), &events); err != nil {
				return false, err
			}
			var pulled, refused bool
			for _, e := range events {
				if e["node"] != nodeID || e["install"] != "web" {
					continue
				}
				pulled = pulled || (e["status"] == float64(200) && e["repository"] == "team/app")
				refused = refused || e["reason"] == "install_disabled"
			}
			return pulled && refused, fmt.Errorf("events %v", events)
		})
	})

	// Issue 15 part 5: cached images across two Akash lease namespaces.
	step("akash-cached-images", func(t *testing.T) {
		c.t, pg.t = t, t
		akashCachedImages(t, c, pg, hubImg(upA, "registry-a.corp", "team/app:v1"), hubImg(upB, "registry-b.corp", "other/tool:v1"))
	})

	// Issue 15: Akash leases on provider-1, no tenant password on the
	// cluster.
	step("akash-leases", func(t *testing.T) {
		c.t, pg.t = t, t
		akashLeases(t, &akashEnv{c: c, pg: pg, chart: chart, sleeper: bin, agentRun: agentDir + "/run",
			helperBin: kubeletDir + "/bin/pullgate-credential-provider", controllerSA: "pullgate:pullgate-agent-akash",
			controllerPod: "pullgate-agent-akash"})
	})

	// 3. A single-workspace cluster in mirror form: images keep their
	// upstream names, the agent's hosts.toml sends them to the hub.
	step("mirror", func(t *testing.T) {
		c.t, pg.t = t, t
		pg.must(upA.Password+"\n", "registry", "add", "-w", "acme", "--name", "test", "--host", "registry.test",
			"--endpoint", upA.URL, "--allow-private-network", "--username", upA.User, "--password-stdin")
		join := strings.TrimSpace(pg.must("", "cluster", "create", "edge", "--workspace", "acme"))
		pg.must("", "install", "create", "-w", "acme", "--name", "edge-app", "--cluster", "edge", "--repo", "registry.test/team/*")
		// The node moves to the new cluster: a new identity (state dir).
		c.helm(append([]string{"upgrade", "pullgate-agent", chart, "-n", "pullgate",
			"--set", "hub.enabled=false", "--set", "agent.natsURL=tls://" + natsAddr,
			"--set", "agent.natsCA.configMapName=pullgate-nats-ca", "--set", "agent.joinToken.value=" + join,
			"--set", "agent.kubelet.matchImages={registry.test," + hubAddr + "}",
			"--set", "agent.containerd.configPath=" + c.certsDir, "--set", "agent.containerd.hubURL=http://" + hubAddr},
			agentValues(agentDir+"/state-edge")...)...)
		waitFor(t, 3*time.Minute, "the agent keeps registry.test's hosts.toml", func() (bool, error) {
			b, err := os.ReadFile(c.certsDir + "/registry.test/hosts.toml")
			return err == nil && bytes.Contains(b, []byte(hubAddr)), err
		})
		c.waitReady("pullgate", "pullgate-agent", 3*time.Minute)
		// matchImages changed: "restart it again when matchImages change".
		c.restartKubelet(providerFlags...)
		c.namespace("edge")
		t.Logf("mirror form registry.test/team/app:v1: %v", c.mustRun(testPod("edge", "m1", "registry.test/team/app:v1", corev1.PullAlways)))
		t.Logf("public image of an un-mirrored host: %v", c.mustRun(testPod("edge", "pub", public, corev1.PullAlways)))
	})
	t.Logf("FIGURE TestKubernetes total %v", time.Since(start).Round(time.Second))
}
