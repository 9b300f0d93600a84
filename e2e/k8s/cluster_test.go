//go:build e2e_k8s

package k8s

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/pullgate/pullgate/internal/testupstream"
)

const (
	nodeName   = "node1"
	adminToken = "admintoken"
	nodeToken  = "nodetoken"
	saIssuer   = "https://kubernetes.default.svc.cluster.local"
)

// cluster is a one-node Kubernetes on 127.0.0.1 in a temporary directory
// (../../shared recipe "A real single-node Kubernetes"): kine, the API
// server, controller-manager, scheduler, containerd with runc, a kubelet.
type cluster struct {
	t          *testing.T // the current (sub)test, for failures
	life       *testing.T // the whole test: processes live as long as it
	dir        string
	bin        string // .cache/bin
	api        string // https://127.0.0.1:PORT
	kubeconfig string // admin
	client     *http.Client

	ctrSock, certsDir, staticDir string
	images                       runtimeapi.ImageServiceClient

	kubeletConf string
	kubelet     *proc
	kubeletArgs []string
	// procs are the control plane's processes, whose logs (in memory
	// until the test ends) grepClusterState reads too.
	procs []*proc
}

func cacheBin(t *testing.T) string {
	dir := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin")
	var missing []string
	for _, b := range []string{"kube-apiserver", "kubelet", "kube-controller-manager", "kube-scheduler", "kine",
		"containerd", "containerd-shim-runc-v2", "helm"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing in .cache/bin: %v (make e2e-k8s builds them with e2e/k8s/build-tools.sh)", missing)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("no runc on PATH (Debian: apt-get install runc)")
	}
	return dir
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func kubeconfig(server, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: %q}
contexts:
- name: local
  context: {cluster: local, user: u}
current-context: local
`, server, token)
}

// startCluster starts everything but the kubelet's credential provider.
func startCluster(t *testing.T, pauseImage, nodeIP string) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the Kubernetes e2e suite runs the kubelet and containerd as root")
	}
	c := &cluster{t: t, life: t, dir: t.TempDir(), bin: cacheBin(t)}
	// Last (before the directory goes): what the kubelet and runc mounted
	// under it.
	t.Cleanup(func() { unmountUnder(t, c.dir) })
	c.client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	d := c.dir
	path := "PATH=" + c.bin + ":" + os.Getenv("PATH")

	// kine: the etcd API on SQLite.
	etcd := fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t))
	kine := startProc(t, "kine", d, nil, filepath.Join(c.bin, "kine"),
		"--endpoint", "sqlite://"+d+"/kine.db?_journal=WAL&cache=shared", "--listen-address", etcd, "--metrics-bind-address", "0")

	// Service-account signing key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, d+"/sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), 0o600)
	writeFile(t, d+"/sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), 0o644)
	writeFile(t, d+"/tokens.csv", adminToken+",admin,admin,\"system:masters\"\n"+
		nodeToken+",system:node:"+nodeName+","+nodeName+",\"system:nodes\"\n", 0o600)

	port := testupstream.FreePort(t)
	c.api = fmt.Sprintf("https://127.0.0.1:%d", port)
	waitFor(t, 30*time.Second, "kine listening", func() (bool, error) {
		if err := kine.alive(); err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialTimeout("tcp", etcd, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil, err
	})
	api := startProc(t, "kube-apiserver", d, nil, filepath.Join(c.bin, "kube-apiserver"),
		"--etcd-servers=http://"+etcd, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port), "--cert-dir="+d+"/apiserver", "--endpoint-reconciler-type=none",
		"--service-account-issuer="+saIssuer, "--service-account-key-file="+d+"/sa.pub",
		"--service-account-signing-key-file="+d+"/sa.key", "--token-auth-file="+d+"/tokens.csv",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true")
	waitFor(t, 3*time.Minute, "kube-apiserver ready", func() (bool, error) {
		if err := api.alive(); err != nil {
			t.Fatal(err)
		}
		code, _, err := c.raw("GET", "/readyz", nil)
		return code == 200, err
	})
	c.kubeconfig = d + "/admin.kubeconfig"
	writeFile(t, c.kubeconfig, kubeconfig(c.api, adminToken), 0o600)
	writeFile(t, d+"/node.kubeconfig", kubeconfig(c.api, nodeToken), 0o600)

	// Controllers: service accounts and their tokens' root CA, DaemonSets,
	// Deployments; the scheduler places the chart's pods.
	kcm := startProc(t, "kube-controller-manager", d, nil, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig, "--service-account-private-key-file="+d+"/sa.key",
		"--root-ca-file="+d+"/apiserver/apiserver.crt", "--leader-elect=false", "--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", testupstream.FreePort(t)), "--use-service-account-credentials=false")
	sched := startProc(t, "kube-scheduler", d, nil, filepath.Join(c.bin, "kube-scheduler"),
		"--kubeconfig="+c.kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", testupstream.FreePort(t)))
	c.procs = append(c.procs, kine, api, kcm, sched)

	c.startContainerd(pauseImage, path)

	// The kubelet (no credential provider yet: the chart installs it).
	c.staticDir = d + "/manifests"
	os.MkdirAll(c.staticDir, 0o755)
	// Pod logs under the cluster's directory too (not /var/log/pods):
	// grepClusterState reads them.
	os.MkdirAll(d+"/pod-logs", 0o755)
	c.kubeletConf = d + "/kubelet.yaml"
	writeFile(t, c.kubeletConf, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
address: 127.0.0.1
healthzBindAddress: 127.0.0.1
healthzPort: %d
port: %d
readOnlyPort: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
resolvConf: ""
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "0%%", nodefs.available: "0%%", imagefs.available: "0%%"}
staticPodPath: %s
podLogsDir: %s
fileCheckFrequency: 1s
syncFrequency: 5s
# What the README asks of operators with --remove-revoked-images (KEP-2535):
# the kubelet checks a pod's credentials before it uses a cached image.
imagePullCredentialsVerificationPolicy: AlwaysVerify
`, testupstream.FreePort(t), testupstream.FreePort(t), c.ctrSock, c.staticDir, d+"/pod-logs"), 0o644)
	c.kubeletArgs = []string{"--kubeconfig=" + d + "/node.kubeconfig", "--config=" + c.kubeletConf,
		"--hostname-override=" + nodeName, "--node-ip=" + nodeIP, "--root-dir=" + d + "/kubelet",
		"--cert-dir=" + d + "/kubelet-pki"}
	c.startKubelet()
	// First: no kubelet to restart pods, then every pod sandbox and its
	// containers stopped and removed (their shims exit), then containerd.
	t.Cleanup(c.teardownPods)
	waitFor(t, 2*time.Minute, "node registered", func() (bool, error) {
		if err := c.kubelet.alive(); err != nil {
			t.Fatal(err)
		}
		code, _, err := c.raw("GET", "/api/v1/nodes/"+nodeName, nil)
		return code == 200, err
	})
	return c
}

func (c *cluster) startContainerd(pauseImage, path string) {
	t, d := c.t, c.dir+"/containerd"
	c.ctrSock = d + "/containerd.sock"
	c.certsDir = d + "/certs.d"
	os.MkdirAll(c.certsDir, 0o755)
	writeFile(t, d+"/config.toml", fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[5]q
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[6]q
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[7]q]
    conf_dir = %[7]q
[plugins."io.containerd.transfer.v1.local"]
  [[plugins."io.containerd.transfer.v1.local".unpack_config]]
    platform = "linux/amd64"
    snapshotter = "native"
    differ = "walking"
`, d+"/root", d+"/state", c.ctrSock, d+"/opt", c.certsDir, pauseImage, d+"/cni"), 0o644)
	ctr := startProc(t, "containerd", d, []string{path}, filepath.Join(c.bin, "containerd"), "--config", d+"/config.toml")
	c.procs = append(c.procs, ctr)
	conn, err := grpc.NewClient("unix://"+c.ctrSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.images = runtimeapi.NewImageServiceClient(conn)
	waitFor(t, 30*time.Second, "containerd CRI serving", func() (bool, error) {
		if err := ctr.alive(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		return err == nil, err
	})
}

// teardownPods stops the kubelet and removes every pod sandbox through CRI.
func (c *cluster) teardownPods() {
	c.kubelet.kill()
	conn, err := grpc.NewClient("unix://"+c.ctrSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.life.Logf("teardown: %v", err)
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		c.life.Logf("teardown: list pod sandboxes: %v", err)
		return
	}
	for _, sb := range l.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			c.life.Logf("teardown: stop %s: %v", sb.Metadata.GetName(), err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			c.life.Logf("teardown: remove %s: %v", sb.Metadata.GetName(), err)
		}
	}
}

// unmountUnder detaches every mount below dir (deepest first).
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Logf("unmount: %v", err)
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mounts = append(mounts, f[1])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mounts[i], err)
		}
	}
}

func (c *cluster) startKubelet(extra ...string) {
	c.kubelet = startProc(c.life, "kubelet", c.dir, []string{"PATH=" + c.bin + ":" + os.Getenv("PATH")},
		filepath.Join(c.bin, "kubelet"), append(append([]string(nil), c.kubeletArgs...), extra...)...)
}

// restartKubelet stops the kubelet and starts it with extra flags, as an
// operator does after changing them; it waits for the node to be seen
// again.
func (c *cluster) restartKubelet(extra ...string) {
	c.t.Helper()
	c.kubelet.kill()
	os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("kubelet-%d.log", time.Now().UnixNano())), []byte(c.kubelet.log.String()), 0o644)
	start := time.Now()
	c.startKubelet(extra...)
	waitFor(c.t, 2*time.Minute, "kubelet back", func() (bool, error) {
		if err := c.kubelet.alive(); err != nil {
			c.t.Fatal(err)
		}
		// The node's lease, renewed every 10s by a running kubelet.
		var l struct {
			Spec struct {
				RenewTime time.Time `json:"renewTime"`
			} `json:"spec"`
		}
		if err := c.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"+nodeName, &l); err != nil {
			return false, err
		}
		return l.Spec.RenewTime.After(start), nil
	})
}

// raw is one API request as the admin.
func (c *cluster) raw(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.api+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *cluster) get(path string, out any) error {
	code, b, err := c.raw("GET", path, nil)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("GET %s: %d %s", path, code, b)
	}
	return json.Unmarshal(b, out)
}

// create POSTs obj to path (collection) and fails the test on an error.
func (c *cluster) create(path string, obj any) {
	c.t.Helper()
	code, b, err := c.raw("POST", path, obj)
	if err != nil || code/100 != 2 {
		c.t.Fatalf("POST %s: %d %v %s", path, code, err, b)
	}
}

func (c *cluster) namespace(name string) {
	c.t.Helper()
	c.create("/api/v1/namespaces", &corev1.Namespace{TypeMeta: meta("v1", "Namespace"), ObjectMeta: objMeta(name, "")})
	waitFor(c.t, time.Minute, "default service account in "+name, func() (bool, error) {
		code, _, err := c.raw("GET", "/api/v1/namespaces/"+name+"/serviceaccounts/default", nil)
		return code == 200, err
	})
}

// pods returns the pods of a namespace.
func (c *cluster) pods(ns string) []corev1.Pod {
	var l corev1.PodList
	if err := c.get("/api/v1/namespaces/"+ns+"/pods", &l); err != nil {
		c.t.Fatal(err)
	}
	return l.Items
}

func (c *cluster) pod(ns, name string) (corev1.Pod, error) {
	var p corev1.Pod
	err := c.get("/api/v1/namespaces/"+ns+"/pods/"+name, &p)
	return p, err
}

func (c *cluster) deletePod(ns, name string) {
	c.t.Helper()
	zero := int64(0)
	code, b, err := c.raw("DELETE", "/api/v1/namespaces/"+ns+"/pods/"+name, map[string]any{"gracePeriodSeconds": zero})
	if err != nil || (code/100 != 2 && code != 404) {
		c.t.Fatalf("delete pod %s/%s: %d %v %s", ns, name, code, err, b)
	}
	waitFor(c.t, time.Minute, "pod "+ns+"/"+name+" gone", func() (bool, error) {
		code, _, err := c.raw("GET", "/api/v1/namespaces/"+ns+"/pods/"+name, nil)
		return code == 404, err
	})
}

// nodeImages lists the names of the images in the node's containerd.
func (c *cluster) nodeImages() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, img := range r.Images {
		out = append(out, img.RepoTags...)
	}
	return out
}

func (c *cluster) removeImage(ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
}
