//go:build e2e_k8s

package k8s

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/akash"
)

// akashEnv is what the Akash step takes from TestKubernetes.
type akashEnv struct {
	c             *cluster
	pg            *hubCLI
	chart         string
	sleeper       []byte
	agentRun      string // the agent's socket dir
	helperBin     string // the credential provider the chart installed
	controllerSA  string // namespace:serviceaccount of the chart's controller
	controllerPod string // name prefix of its pod
}

// hubAPI is one request to the hub's API with the token in tokenFile.
func hubAPI(t *testing.T, method, path, tokenFile string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+hubAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// tenantLogin runs `pullgate-hub tenant login --key-file` as a tenant does
// (no token of its own yet) and returns the tenant's CLI and workspace.
func tenantLogin(t *testing.T, e *akashEnv, k akashKey) (*hubCLI, string) {
	t.Helper()
	save := filepath.Join(e.c.dir, k.address+".token")
	cmd := exec.Command(e.pg.bin, "--hub", "http://"+hubAddr, "tenant", "login", "--address", k.address,
		"--key-file", k.keyFile(t, e.c.dir), "--save", save, "-o", "json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("tenant login %s: %v\n%s%s", k.address, err, out.String(), errb.String())
	}
	took := time.Since(start)
	var r struct {
		Workspace string
		Created   bool
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Workspace == "" || !r.Created {
		t.Fatalf("tenant login %s: %v %s", k.address, err, out.String())
	}
	if st, err := os.Stat(save); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tenant login --save: %v %v", st.Mode(), err)
	}
	t.Logf("FIGURE tenant login (challenge, ADR-036 signature, token) through the CLI: %v", took.Round(time.Millisecond))
	return &hubCLI{t: t, bin: e.pg.bin, dir: e.c.dir, tokenFile: save}, r.Workspace
}

// leaseToken asks the agent for the install token of a pod in ns exactly as
// the kubelet does: the credential provider with a service-account token
// bound to the pod (audience pullgate).
func leaseToken(t *testing.T, e *akashEnv, pod corev1.Pod, image string) string {
	t.Helper()
	c := e.c
	var tr struct {
		Status struct{ Token string }
	}
	code, b, err := c.raw("POST", "/api/v1/namespaces/"+pod.Namespace+"/serviceaccounts/default/token", map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"audiences": []string{"pullgate"}, "expirationSeconds": 600,
			"boundObjectRef": map[string]any{"kind": "Pod", "apiVersion": "v1", "name": pod.Name, "uid": string(pod.UID)}}})
	if err != nil || code != 201 || json.Unmarshal(b, &tr) != nil {
		t.Fatalf("token request: %d %v %s", code, err, b)
	}
	req, _ := json.Marshal(map[string]any{"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest",
		"image": image, "serviceAccountToken": tr.Status.Token})
	cmd := exec.Command(e.helperBin, "--socket", e.agentRun+"/agent.sock")
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("credential provider: %v", err)
	}
	var resp struct {
		Auth map[string]struct{ Username, Password string }
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.Auth[hubAddr].Password == "" {
		t.Fatalf("credential provider: no token for %s: %v", image, err)
	}
	return resp.Auth[hubAddr].Password
}

// pullManifest fetches image's manifest from the hub with an install token.
func pullManifest(image, token string) error {
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		return err
	}
	_, err = remote.Head(ref, remote.WithAuth(&authn.Basic{Username: "pullgate", Password: token}))
	return err
}

// leaseRows is the hub's lease list of provider-1, as the admin sees it.
func leaseRows(t *testing.T, e *akashEnv) string {
	code, b := hubAPI(t, "GET", "/api/v1/clusters/provider-1/akash/leases", e.pg.tokenFile, nil)
	if code != 200 {
		t.Fatalf("lease list: %d %s", code, b)
	}
	return string(b)
}

// akashLeases is issue 15 on the shared cluster provider-1: tenants sign
// in with their Akash keys, the binding controller binds their installs to
// their lease namespaces, and no tenant's upstream password ever reaches
// the cluster.
func akashLeases(t *testing.T, e *akashEnv) {
	c, pg := e.c, e.pg
	img := func(host, ref string) string { return hubAddr + "/" + host + "/" + ref }

	// Two tenants' upstreams (parts 1-3) and a third tenant's, who still
	// puts credentials in the SDL (part 4).
	up1, up2, up3 := testupstream.StartDistribution(t), testupstream.StartDistribution(t), testupstream.StartDistribution(t)
	for _, r := range []struct {
		up  *testupstream.Registry
		ref string
	}{{up1, "t1/app:v1"}, {up1, "t1/app:v2"}, {up1, "t1/app:v3"}, {up2, "t2/tool:v1"}, {up3, "t3/web:v1"}} {
		push(t, r.up.Host+"/"+r.ref, runnable(t, e.sleeper, 1<<20), r.up.Auth())
	}
	pw1, pw2 := up1.Password, up2.Password

	// The provider: its CRDs, its manifest namespace, its address.
	c.installAkashCRDs()
	c.namespace(manifestNamespace)
	provider := newAkashKey(t)
	pg.must("", "cluster", "update", "provider-1", "--akash-provider", provider.address, "--akash-controller", e.controllerSA)
	webhookPort := testupstream.FreePort(t)
	apiHostPort := strings.TrimPrefix(c.api, "https://")
	// This node: no kube-proxy (akash.apiServer), no pod network
	// (hostNetwork, the webhook at a URL, one replica for its port), a
	// not-ready node; the hub's metrics port is taken.
	c.helm([]string{"upgrade", "pullgate-agent", e.chart, "-n", "pullgate", "--reuse-values",
		"--set", "akash.enabled=true", "--set", "akash.cluster=provider-1", "--set", "akash.hubURL=http://" + hubAddr,
		"--set", "akash.importCredentials=true",
		"--set", "akash.apiServer=" + apiHostPort, "--set", "akash.hostNetwork=true", "--set", "akash.replicas=1",
		"--set", fmt.Sprintf("akash.metricsPort=%d", testupstream.FreePort(t)),
		"--set", "akash.tolerations[0].operator=Exists", "--set", "akash.logFormat=text",
		"--set", fmt.Sprintf("akash.webhook.port=%d", webhookPort),
		"--set", fmt.Sprintf("akash.webhook.url=https://127.0.0.1:%d", webhookPort)}...)
	c.waitReady("pullgate", e.controllerPod, 3*time.Minute)

	// 1. Tenants sign in with their account keys.
	k1, k2 := newAkashKey(t), newAkashKey(t)
	t1, ws1 := tenantLogin(t, e, k1)
	t2, ws2 := tenantLogin(t, e, k2)

	// 2. Each stores its credential and an install for all its leases.
	// The test's upstreams are on loopback, which a tenant may not open
	// on a hub with self-service: the admin does it, as the suite names
	// them registry-N.corp with --endpoint.
	if out, err := t1.run(pw1+"\n", "registry", "add", "-w", ws1, "--name", "lan", "--host", "registry-1.corp",
		"--endpoint", up1.URL, "--allow-private-network", "--username", up1.User, "--password-stdin"); err == nil || !strings.Contains(err.Error(), "allow_private_network") {
		t.Fatalf("a tenant opens the hub's private network: %v %s", err, out)
	}
	t1.must(pw1+"\n", "registry", "add", "-w", ws1, "--name", "up", "--host", "registry-1.corp",
		"--endpoint", up1.URL, "--username", up1.User, "--password-stdin")
	t1.must("", "install", "create", "-w", ws1, "--name", "app", "--akash", "all", "--repo", "registry-1.corp/t1/*")
	t2.must(pw2+"\n", "registry", "add", "-w", ws2, "--name", "up", "--host", "registry-2.corp",
		"--endpoint", up2.URL, "--username", up2.User, "--password-stdin")
	t2.must("", "install", "create", "-w", ws2, "--name", "tool", "--akash", "all", "--repo", "registry-2.corp/t2/*")
	pg.must("", "registry", "update", "-w", ws1, "up", "--allow-private-network=true")
	pg.must("", "registry", "update", "-w", ws2, "up", "--allow-private-network=true")

	// 3. Their leases: namespaces as the provider makes them; the
	// controller reports them to the hub.
	l1 := akash.LeaseID{Owner: k1.address, DSeq: 7001, GSeq: 1, OSeq: 1, Provider: provider.address}
	l2 := akash.LeaseID{Owner: k2.address, DSeq: 7002, GSeq: 1, OSeq: 1, Provider: provider.address}
	created := time.Now()
	ns1, ns2 := c.leaseNamespace(l1, "1"), c.leaseNamespace(l2, "1")
	waitFor(t, 30*time.Second, "the controller reports both leases", func() (bool, error) {
		rows := leaseRows(t, e)
		return strings.Contains(rows, ns1) && strings.Contains(rows, ns2), fmt.Errorf("leases: %s", rows)
	})
	t.Logf("FIGURE lease namespaces created → both leases on the hub: %v", time.Since(created).Round(time.Millisecond))

	app1, tool2 := img("registry-1.corp", "t1/app:v1"), img("registry-2.corp", "t2/tool:v1")
	start := time.Now()
	c.create("/apis/apps/v1/namespaces/"+ns1+"/deployments", providerDeployment(l1, "web", app1, "1", false))
	p1 := c.deploymentPod(ns1, "web", "")
	t.Logf("FIGURE lease 1's provider-shaped pod, private image through the hub: %v", c.waitRunning(ns1, p1.Name, start, 2*time.Minute))
	start = time.Now()
	c.create("/apis/apps/v1/namespaces/"+ns2+"/deployments", providerDeployment(l2, "tool", tool2, "1", false))
	p2 := c.deploymentPod(ns2, "tool", "")
	t.Logf("lease 2's pod, its own image: %v", c.waitRunning(ns2, p2.Name, start, 2*time.Minute))

	// Neither can pull the other's, cached on the node or not.
	for _, x := range []struct {
		l     akash.LeaseID
		image string
	}{{l2, app1}, {l1, tool2}} {
		if !slices.Contains(c.nodeImages(), x.image) {
			t.Fatalf("%s is not cached on the node", x.image)
		}
		o, p := c.runDeployment(providerDeployment(x.l, "steal", x.image, "1", false))
		if o.running || !isAuthError(o.message) {
			t.Fatalf("lease %s's pod %s with the other tenant's cached image %s: want a refusal, got %v", x.l.Namespace(), p.Name, x.image, o)
		}
		t.Logf("lease %d's pod, the other tenant's cached image (IfNotPresent): %v", x.l.DSeq, o)
	}

	// 4. Rotation: the upstream takes only the new password; the pod that
	// fails with the old one runs once the tenant updated the registry,
	// with nothing changed on the cluster.
	pw1b := "rotated-" + hex.EncodeToString([]byte(pw1))[:24]
	up1.SetPassword(t, pw1b)
	app2 := img("registry-1.corp", "t1/app:v2")
	c.create("/apis/apps/v1/namespaces/"+ns1+"/deployments", providerDeployment(l1, "rotate", app2, "1", false))
	pr := c.deploymentPod(ns1, "rotate", "")
	o := c.waitPod(ns1, pr.Name, time.Now(), 2*time.Minute)
	if o.running {
		t.Fatalf("%s pulled with the upstream's old password", app2)
	}
	t.Logf("upstream password changed, hub not told yet: %v", o)
	t1.must(pw1b+"\n", "registry", "update", "-w", ws1, "up", "--password-stdin")
	updated := time.Now()
	t.Logf("FIGURE registry update (rotation) → the failing pod Running, no change on the cluster: %v (the kubelet's pull back-off decides when it retries)",
		c.waitRunning(ns1, pr.Name, updated, 3*time.Minute))

	// 5. The provider's reconcile rewrites every akash.network label; the
	// binding stays: a new pull of a new image works.
	c.relabelLease(l1, "2")
	time.Sleep(2 * time.Second) // let the controller see the update
	if rows := leaseRows(t, e); !strings.Contains(rows, ns1) {
		t.Fatalf("lease 1 unbound after the provider's label rewrite: %s", rows)
	}
	o, _ = c.runDeployment(providerDeployment(l1, "relabelled", img("registry-1.corp", "t1/app:v3"), "2", false))
	if !o.running {
		t.Fatalf("after the label rewrite: %v", o)
	}
	t.Logf("after the provider's label rewrite, a new image: %v", o)

	// 6. Namespace deletion unbinds: the lease row goes, and the install
	// token the node holds for that lease is refused at once.
	p2, _ = c.pod(ns2, p2.Name)
	tok := leaseToken(t, e, p2, tool2)
	if err := pullManifest(tool2, tok); err != nil {
		t.Fatalf("lease token before the namespace's deletion: %v", err)
	}
	deleted := time.Now()
	c.deleteNamespace(ns2)
	waitFor(t, 30*time.Second, "lease 2 gone from the hub", func() (bool, error) {
		rows := leaseRows(t, e)
		return !strings.Contains(rows, ns2), fmt.Errorf("leases: %s", rows)
	})
	t.Logf("FIGURE namespace deletion started → lease row gone: %v", time.Since(deleted).Round(time.Millisecond))
	if err := pullManifest(tool2, tok); err == nil || !isAuthError(err.Error()) {
		t.Fatalf("lease token after the namespace's deletion: %v, want 401", err)
	}
	// --remove-revoked-images: the tenant's install is no longer served on
	// this cluster (its only lease here ended), so its image leaves the
	// node.
	gone := waitFor(t, 90*time.Second, "lease 2's image removed from the node", func() (bool, error) {
		imgs := c.nodeImages()
		return !slices.Contains(imgs, tool2), fmt.Errorf("images %v", imgs)
	})
	t.Logf("FIGURE lease row gone → the ended lease's image removed from the node: %v", gone.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "the audit shows the lease token refused as lease_ended", func() (bool, error) {
		var events []map[string]any
		out := pg.must("", "audit", "-w", ws2, "--since", "all", "-o", "json")
		if err := json.Unmarshal([]byte(out), &events); err != nil {
			return false, err
		}
		for _, ev := range events {
			if ev["reason"] == "lease_ended" {
				return true, nil
			}
		}
		return false, fmt.Errorf("events %s", out)
	})

	// 7. Forged and replayed login signatures.
	akashLoginAttacks(t, k1, k2)

	// 8. Part 4: a tenant whose SDL still has credentials. The Secret the
	// provider made holds a wrong password: the pod runs only if the
	// webhook took it out of the pull.
	k3 := newAkashKey(t)
	l3 := akash.LeaseID{Owner: k3.address, DSeq: 7003, GSeq: 1, OSeq: 1, Provider: provider.address}
	const host3 = "registry-3.corp"
	image3 := host3 + "/t3/web:v1"
	c.create("/apis/akash.network/v2beta2/namespaces/"+manifestNamespace+"/manifests", manifestCR(l3, "1",
		[]manifestService{{name: "web", image: image3, creds: &manifestCreds{host: host3, username: up3.User, password: up3.Password}}}))
	ns3 := c.leaseNamespace(l3, "1")
	ws3 := "akash-" + strings.TrimPrefix(k3.address, "akash1")[:10]
	waitFor(t, 30*time.Second, "the controller imports lease 3's credentials", func() (bool, error) {
		out, err := pg.run("", "install", "get", "-w", ws3, "sdl-7003", "-o", "json")
		return err == nil, fmt.Errorf("%v %s", err, out)
	})
	// The test's upstream is not at registry-3.corp:443: point the
	// imported credential at it, as the suite does with --endpoint.
	var regs []struct{ Name string }
	json.Unmarshal([]byte(pg.must("", "registry", "list", "-w", ws3, "-o", "json")), &regs)
	if len(regs) != 1 {
		t.Fatalf("imported credentials of lease 3: %+v", regs)
	}
	pg.must("", "registry", "update", "-w", ws3, regs[0].Name, "--endpoint", up3.URL, "--allow-private-network=true")
	// The controller keeps the hub's image map when the import returns,
	// a moment after the hub made the install.
	time.Sleep(time.Second)
	c.create("/api/v1/namespaces/"+ns3+"/secrets", dockerCredsSecret(l3, "web", "1", host3, up3.User, "wrong-password"))
	o, p3 := c.runDeployment(providerDeployment(l3, "web", image3, "1", true))
	if !o.running {
		t.Fatalf("part 4: %v", o)
	}
	p3, _ = c.pod(ns3, p3.Name)
	if got := p3.Spec.Containers[0].Image; got != img(host3, "t3/web:v1") {
		t.Fatalf("part 4: the pod's image is %s, want the hub form", got)
	}
	if len(p3.Spec.ImagePullSecrets) != 0 {
		t.Fatalf("part 4: the pod still names %v", p3.Spec.ImagePullSecrets)
	}
	t.Logf("part 4, wrong password in docker-creds-web, image rewritten by the webhook: %v", o)
	waitFor(t, 10*time.Second, "the audit shows lease 3's pull", func() (bool, error) {
		var events []map[string]any
		out := pg.must("", "audit", "-w", ws3, "--since", "all", "-o", "json")
		if err := json.Unmarshal([]byte(out), &events); err != nil {
			return false, err
		}
		for _, ev := range events {
			if ev["install"] == "sdl-7003" && ev["status"] == float64(200) {
				return true, nil
			}
		}
		return false, fmt.Errorf("events %s", out)
	})

	// 9. The whole cluster state, for the upstream passwords of parts 1-3:
	// nothing. Part 4's is in the Manifest CR, as docs/akash.md says.
	for _, pw := range []string{pw1, pw1b, pw2} {
		if hits := c.grepClusterState(pw); len(hits) != 0 {
			t.Errorf("an upstream password of parts 1-3 is in the cluster state: %v", hits)
		}
	}
	hits := c.grepClusterState(up3.Password)
	if !slices.Contains(hits, "api /apis/akash.network/v2beta2/manifests "+manifestNamespace+"/"+ns3) {
		t.Errorf("part 4's password not found in its Manifest CR: %v", hits)
	}
	t.Logf("part 4's upstream password, in the provider's own state: %v", hits)
}

// akashLoginAttacks: a signature by another key, a tampered one, and a
// replay are refused, and a challenge is spent by a failed attempt.
func akashLoginAttacks(t *testing.T, k1, k2 akashKey) {
	challenge := func() (string, []byte) {
		code, b := hubAPI(t, "POST", "/api/v1/tenant/challenge", "", map[string]string{"address": k1.address})
		var ch struct{ ID, Message string }
		if code != 201 || json.Unmarshal(b, &ch) != nil {
			t.Fatalf("challenge: %d %s", code, b)
		}
		return ch.ID, []byte(ch.Message)
	}
	sign := func(k akashKey, msg []byte) (string, string) {
		priv, _ := hex.DecodeString(k.hex)
		pub, sig, err := akash.Sign(priv, k.address, msg)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(sig)
	}
	login := func(id, pub, sig string) (int, []byte) {
		return hubAPI(t, "POST", "/api/v1/tenant/login", "", map[string]string{"challenge": id, "pub_key": pub, "signature": sig})
	}

	// Signed by another account's key.
	id, msg := challenge()
	pub, sig := sign(k2, msg)
	if code, b := login(id, pub, sig); code != 401 {
		t.Fatalf("login signed by another key: %d %s", code, b)
	}
	// The right key, one bit of the signature flipped; then the right
	// signature on the same challenge, which the failure spent.
	id, msg = challenge()
	pub, sig = sign(k1, msg)
	raw, _ := base64.StdEncoding.DecodeString(sig)
	raw[10] ^= 1
	if code, b := login(id, pub, base64.StdEncoding.EncodeToString(raw)); code != 401 {
		t.Fatalf("login with a tampered signature: %d %s", code, b)
	}
	if code, b := login(id, pub, sig); code != 401 {
		t.Fatalf("login on a challenge a failed attempt spent: %d %s", code, b)
	}
	// A replay of a good login.
	id, msg = challenge()
	pub, sig = sign(k1, msg)
	if code, b := login(id, pub, sig); code != 200 {
		t.Fatalf("login: %d %s", code, b)
	}
	if code, b := login(id, pub, sig); code != 401 {
		t.Fatalf("replayed login: %d %s", code, b)
	}
	t.Log("forged (another key, a flipped bit), spent and replayed login signatures: 401")
}
