// Package helm_test renders the pullgate chart with the helm binary (built
// by `make tools` into .cache/bin) for several value sets and decodes every
// manifest strictly into the k8s.io/api types, so a misspelt or misplaced
// field fails here rather than at `helm install`. The rendered init
// container and agent arguments are run against the real binaries.
package helm_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/agent/kubeletconfig"
	"github.com/pullgate/pullgate/internal/testbuild"
	"github.com/pullgate/pullgate/packaging/image"
	"github.com/pullgate/pullgate/pkg/wire"
)

const (
	chartDir  = "pullgate"
	release   = "pg"
	namespace = "pullgate-system"
	hubName   = "pg-pullgate-hub"
	agentName = "pg-pullgate-agent"
	akashName = "pg-pullgate-akash"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helmBin is $PULLGATE_HELM, else .cache/bin/helm (make tools), else helm
// on PATH.
func helmBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs helm: skipped with -short (make test-short)")
	}
	if p := os.Getenv("PULLGATE_HELM"); p != "" {
		return p
	}
	if p := filepath.Join(repoRoot(t), ".cache", "bin", "helm"); isExec(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatal("helm not found: run `make tools` (builds helm into .cache/bin once) or set PULLGATE_HELM")
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// objects are the rendered manifests by "Kind/name", each decoded into its
// k8s.io/api type.
type objects map[string]any

func get[T any](t *testing.T, objs objects, kind, name string) *T {
	t.Helper()
	o, ok := objs[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s/%s rendered; have %v", kind, name, objs.keys())
	}
	v, ok := o.(*T)
	if !ok {
		t.Fatalf("%s/%s is %T", kind, name, o)
	}
	return v
}

func (o objects) keys() []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (o objects) has(kind, name string) bool {
	_, ok := o[kind+"/"+name]
	return ok
}

// typed maps apiVersion/kind to the Go type a manifest must decode into.
// A kind not listed here fails the test: add it deliberately.
func typed(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, true
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		return &admissionregv1.MutatingWebhookConfiguration{}, true
	}
	return nil, false
}

var clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "MutatingWebhookConfiguration": true}

// inOtherNamespace are objects that live outside the release namespace:
// the Akash controller's Role on the provider's Manifests.
var inOtherNamespace = map[string]string{"Role/" + akashName + "-manifests": "lease", "RoleBinding/" + akashName + "-manifests": "lease"}

// render runs helm template with values (a YAML document) and returns the
// decoded objects, or helm's error output.
func render(t *testing.T, values string) (objects, error) {
	t.Helper()
	out, err := helmTemplate(t, filepath.Join(repoRoot(t), "packaging", "helm", chartDir), values)
	if err != nil {
		return nil, err
	}
	return decode(t, out), nil
}

func mustRender(t *testing.T, values string) objects {
	t.Helper()
	objs, err := render(t, values)
	if err != nil {
		t.Fatalf("helm template: %v\nvalues:\n%s", err, values)
	}
	return objs
}

func helmTemplate(t *testing.T, chart, values string, extra ...string) ([]byte, error) {
	t.Helper()
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"template", release, chart, "--namespace", namespace, "--values", vf}, extra...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func decode(t *testing.T, manifests []byte) objects {
	t.Helper()
	objs, metas, err := decodeStrict(manifests)
	if err != nil {
		t.Fatal(err)
	}
	for k, m := range metas {
		checkMeta(t, strings.Split(k, "/")[0], m)
	}
	for k, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			checkSelector(t, k, o.Spec.Selector, o.Spec.Template.Labels)
			checkPodSpec(t, k, &o.Spec.Template.Spec)
		case *appsv1.DaemonSet:
			checkSelector(t, k, o.Spec.Selector, o.Spec.Template.Labels)
			checkPodSpec(t, k, &o.Spec.Template.Spec)
		}
	}
	return objs
}

// decodeStrict decodes every document of a multi-document YAML stream
// into its k8s.io/api type; unknown kinds, unknown or duplicate fields
// and duplicate objects are errors.
func decodeStrict(manifests []byte) (objects, map[string]metav1.ObjectMeta, error) {
	objs, metas := objects{}, map[string]metav1.ObjectMeta{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, metas, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("split manifests: %w", err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, nil, fmt.Errorf("not YAML: %w\n%s", err, doc)
		}
		if len(probe) == 0 {
			continue // comments only
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, nil, err
		}
		obj, ok := typed(tm.APIVersion, tm.Kind)
		if !ok {
			return nil, nil, fmt.Errorf("unexpected %s %s in the chart output:\n%s", tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, nil, fmt.Errorf("%s: strict decode into %T: %w\n%s", tm.Kind, obj, err, doc)
		}
		meta := reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta)
		key := tm.Kind + "/" + meta.Name
		if _, dup := objs[key]; dup {
			return nil, nil, fmt.Errorf("%s rendered twice", key)
		}
		objs[key], metas[key] = obj, meta
	}
}

// TestStrictDecodeCatchesTypos: a misspelt field, one at the wrong level
// and an unknown kind all fail the decoding the chart tests rely on.
func TestStrictDecodeCatchesTypos(t *testing.T) {
	out, err := helmTemplate(t, filepath.Join(repoRoot(t), "packaging", "helm", chartDir), agentValues+`
  securityContext:
    readOnlyRootFilesytem: true
`, "--show-only", "templates/agent-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeStrict(out); err == nil || !strings.Contains(err.Error(), "readOnlyRootFilesytem") {
		t.Errorf("misspelt field: %v", err)
	}
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}], selectr: {a: b}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nports: [{port: 80}]\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
	} {
		if _, _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func checkMeta(t *testing.T, kind string, m metav1.ObjectMeta) {
	t.Helper()
	if clusterScoped[kind] {
		if m.Namespace != "" {
			t.Errorf("%s/%s: cluster-scoped with namespace %q", kind, m.Name, m.Namespace)
		}
	} else if ns, ok := inOtherNamespace[kind+"/"+m.Name]; ok {
		if m.Namespace != ns {
			t.Errorf("%s/%s: namespace %q, want %q", kind, m.Name, m.Namespace, ns)
		}
	} else if m.Namespace != namespace {
		t.Errorf("%s/%s: namespace %q, want the release namespace %q", kind, m.Name, m.Namespace, namespace)
	}
	if m.Labels["app.kubernetes.io/instance"] != release || m.Labels["app.kubernetes.io/name"] != "pullgate" {
		t.Errorf("%s/%s: labels %v", kind, m.Name, m.Labels)
	}
	if len(m.Name) > 63 {
		t.Errorf("%s/%s: name longer than 63", kind, m.Name)
	}
}

func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, labels map[string]string) {
	t.Helper()
	if sel == nil || len(sel.MatchLabels) == 0 {
		t.Errorf("%s: no selector", what)
		return
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod template labels %v", what, k, v, labels)
		}
	}
}

// checkPodSpec catches template slips the API server would reject: mounts
// of volumes that do not exist, probes on ports the container does not
// name, unused volumes.
func checkPodSpec(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	vols := map[string]bool{}
	for _, v := range spec.Volumes {
		if vols[v.Name] {
			t.Errorf("%s: volume %s twice", what, v.Name)
		}
		vols[v.Name] = true
	}
	used := map[string]bool{}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, c := range all {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s: container %s mounts volume %s, which is not defined", what, c.Name, m.Name)
			}
			if mounts[m.MountPath] {
				t.Errorf("%s: container %s mounts %s twice", what, c.Name, m.MountPath)
			}
			mounts[m.MountPath] = true
			used[m.Name] = true
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !ports[p.HTTPGet.Port.StrVal] {
				t.Errorf("%s: container %s probes port %q it does not declare", what, c.Name, p.HTTPGet.Port.StrVal)
			}
		}
		if c.Image == "" || c.Resources.Requests == nil {
			t.Errorf("%s: container %s without image or resource requests", what, c.Name)
		}
		checkContainerSecurity(t, what, c)
	}
	for v := range vols {
		if !used[v] {
			t.Errorf("%s: volume %s is not mounted", what, v)
		}
	}
}

func checkContainerSecurity(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("%s: container %s securityContext %+v: want read-only root, no privilege escalation, all capabilities dropped", what, c.Name, sc)
	}
}

const agentValues = `
agent:
  joinToken:
    value: pgj1.example-join-token
  kubelet:
    matchImages: [ghcr.io, hub.example.com]
`

func TestDefaults(t *testing.T) {
	objs := mustRender(t, agentValues)
	want := []string{
		"DaemonSet/" + agentName, "Deployment/" + hubName, "PersistentVolumeClaim/" + hubName + "-data",
		"Secret/" + agentName + "-join-token", "Secret/" + hubName + "-nats-tls", "Service/" + hubName,
		"ServiceAccount/" + agentName, "ServiceAccount/" + hubName,
	}
	if got := objs.keys(); !slices.Equal(got, want) {
		t.Fatalf("rendered %v\nwant %v", got, want)
	}

	// Hub: one replica owning its volume, embedded SQLite and NATS.
	d := get[appsv1.Deployment](t, objs, "Deployment", hubName)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("hub replicas %d strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	hub := pod.Containers[0]
	for _, a := range []string{"serve", "--data=/var/lib/pullgate", "--listen=0.0.0.0:5080", "--nats-listen=0.0.0.0:4222", "--log-format=json",
		"--nats-tls-cert=/etc/pullgate/nats-tls/tls.crt", "--nats-tls-key=/etc/pullgate/nats-tls/tls.key", "--metrics-listen=0.0.0.0:9465",
		"--cache-size=1GiB"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v: no %s", hub.Args, a)
		}
	}
	// Metrics on a port of their own, on the pod only (the Service below
	// has http and nats alone).
	if !slices.ContainsFunc(hub.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9465 }) {
		t.Errorf("hub ports %+v: no metrics port 9465", hub.Ports)
	}
	if hub.LivenessProbe.HTTPGet.Path != "/healthz" || hub.ReadinessProbe.HTTPGet.Path != "/readyz" || hub.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("hub probes: %+v %+v", hub.LivenessProbe, hub.ReadinessProbe)
	}
	if hub.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTP {
		t.Errorf("probe scheme %s", hub.ReadinessProbe.HTTPGet.Scheme)
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.FSGroup == nil {
		t.Errorf("hub pod securityContext %+v: want non-root with an fsGroup for the volume", psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("hub pod mounts a service account token")
	}
	if hub.Resources.Limits.Memory().IsZero() {
		t.Error("hub has no memory limit")
	}
	if v := volume(t, pod, "data"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != hubName+"-data" {
		t.Errorf("hub data volume %+v", v)
	}
	if m := mount(t, hub, "data"); m.MountPath != "/var/lib/pullgate" {
		t.Errorf("data mounted at %s", m.MountPath)
	}
	pvc := get[corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", hubName+"-data")
	if pvc.Annotations["helm.sh/resource-policy"] != "keep" || pvc.Spec.Resources.Requests.Storage().String() != "2Gi" {
		t.Errorf("pvc %+v", pvc.ObjectMeta.Annotations)
	}

	svc := get[corev1.Service](t, objs, "Service", hubName)
	ports := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
		if p.TargetPort.StrVal != p.Name {
			t.Errorf("service port %s targets %v", p.Name, p.TargetPort)
		}
	}
	if !reflect.DeepEqual(ports, map[string]int32{"http": 5080, "nats": 4222}) {
		t.Errorf("service ports %v", ports)
	}
	checkSelector(t, "hub service", &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, d.Spec.Template.Labels)

	// Agent: kubeadm paths, the config file mounted alone.
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	apod := ds.Spec.Template.Spec
	checkHostPath(t, apod, "state", "/var/lib/pullgate-agent", corev1.HostPathDirectoryOrCreate)
	checkHostPath(t, apod, "socket", "/run/pullgate", corev1.HostPathDirectoryOrCreate)
	checkHostPath(t, apod, "credential-provider-bin", "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec", corev1.HostPathDirectoryOrCreate)
	checkHostPath(t, apod, "credential-provider-config", "/etc/kubernetes/image-credential-provider-config.yaml", corev1.HostPathFileOrCreate)
	agent := apod.Containers[0]
	for _, a := range []string{"run", "--nats-url=tls://" + hubName + "." + namespace + ".svc:4222", "--nats-ca=/etc/pullgate/nats-ca/ca.crt", "--socket=" + wire.DefaultSocket,
		"--join-token-file=/etc/pullgate/join/token", "--state-dir=/var/lib/pullgate-agent", "--sa-jwks=off"} {
		if !slices.Contains(agent.Args, a) {
			t.Errorf("agent args %v: no %s", agent.Args, a)
		}
	}
	if len(agent.Env) == 0 || agent.Env[0].Name != "PULLGATE_NODE_NAME" || agent.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent env %+v", agent.Env)
	}
	if sc := agent.SecurityContext; sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("agent runs as %v, want root (it owns host paths)", sc.RunAsUser)
	}
	if apod.AutomountServiceAccountToken == nil || *apod.AutomountServiceAccountToken {
		t.Error("agent mounts a service account token without issuer discovery")
	}
	if !slices.ContainsFunc(apod.Tolerations, func(tl corev1.Toleration) bool { return tl.Operator == corev1.TolerationOpExists && tl.Key == "" }) {
		t.Errorf("agent does not run on tainted nodes: %+v", apod.Tolerations)
	}
	jt := volume(t, apod, "join-token")
	sec := get[corev1.Secret](t, objs, "Secret", jt.Secret.SecretName)
	if string(sec.Data["token"]) != "pgj1.example-join-token" || jt.Secret.Items[0].Key != "token" || jt.Secret.Items[0].Path != "token" {
		t.Errorf("join token secret %v volume %+v", sec.Data, jt.Secret)
	}
	if *jt.Secret.DefaultMode != 0o400 {
		t.Errorf("join token mode %o", *jt.Secret.DefaultMode)
	}

	// The init container, run for real against a fake host.
	host := runInit(t, ds)
	cfg := readKubeletConfig(t, filepath.Join(host, "/etc/kubernetes/image-credential-provider-config.yaml"))
	p := cfg.Providers[0]
	if !slices.Equal(p.MatchImages, []string{"ghcr.io", "hub.example.com"}) || p.TokenAttributes != nil ||
		!slices.Equal(p.Args, []string{"--socket", wire.DefaultSocket}) {
		t.Errorf("kubelet config provider %+v", p)
	}
	checkAgentFlags(t, agent.Args)
	checkHubFlags(t, hub.Args)
}

// TestImagesMatchChart: the chart runs the images `make images` builds,
// with the entrypoints and users they have.
func TestImagesMatchChart(t *testing.T) {
	objs := mustRender(t, agentValues)
	hub := get[appsv1.Deployment](t, objs, "Deployment", hubName).Spec.Template.Spec
	agent := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec
	for _, c := range []struct {
		image string
		spec  image.Spec
	}{
		{hub.Containers[0].Image, image.Hub()},
		{agent.Containers[0].Image, image.Agent()},
	} {
		if !strings.HasSuffix(strings.Split(c.image, ":")[0], "/"+c.spec.Name) {
			t.Errorf("chart image %s is not %s", c.image, c.spec.Name)
		}
	}
	// The hub's args replace the image's Cmd; its entrypoint is the binary.
	if hub.Containers[0].Command != nil || image.Hub().Entrypoint[0] != image.BinDir+"/pullgate-hub" || hub.Containers[0].Args[0] != "serve" {
		t.Errorf("hub command %v args %v", hub.Containers[0].Command, hub.Containers[0].Args)
	}
	if agent.Containers[0].Command != nil || image.Agent().Entrypoint[0] != image.BinDir+"/pullgate-agent" || agent.Containers[0].Args[0] != "run" {
		t.Errorf("agent command %v args %v", agent.Containers[0].Command, agent.Containers[0].Args)
	}
	// The chart's non-root hub user is the image's.
	if uid := *hub.SecurityContext.RunAsUser; uid != image.NonRootUID {
		t.Errorf("hub runs as %d, the image's user is %d", uid, image.NonRootUID)
	}
}

func TestK3sShared(t *testing.T) {
	objs := mustRender(t, agentValues+`
    preset: k3s
    shared: true
`)
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	pod := ds.Spec.Template.Spec
	checkHostPath(t, pod, "credential-provider-bin", "/var/lib/rancher/credentialprovider/bin", corev1.HostPathDirectoryOrCreate)
	checkHostPath(t, pod, "credential-provider-config", "/var/lib/rancher/credentialprovider", corev1.HostPathDirectoryOrCreate)
	init := pod.InitContainers[0]
	if !slices.Contains(init.Args, "--shared") || slices.Contains(init.Args, "--config-in-place") {
		t.Errorf("init args %v", init.Args)
	}

	host := runInit(t, ds)
	cfg := readKubeletConfig(t, filepath.Join(host, "/var/lib/rancher/credentialprovider/config.yaml"))
	ta := cfg.Providers[0].TokenAttributes
	if ta == nil || ta.ServiceAccountTokenAudience != "pullgate" || ta.CacheType != kubeletv1.ServiceAccountServiceAccountTokenCacheType ||
		ta.RequireServiceAccount == nil || !*ta.RequireServiceAccount {
		t.Errorf("shared: tokenAttributes %+v", ta)
	}
	for _, f := range []string{"/var/lib/rancher/credentialprovider/bin/pullgate-credential-provider", "/var/lib/rancher/credentialprovider/bin/docker-credential-pullgate"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}

	// Kubelets may request tokens for the audience.
	cr := get[rbacv1.ClusterRole](t, objs, "ClusterRole", agentName+"-node-audience")
	if len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Verbs, []string{"request-serviceaccounts-token-audience"}) ||
		!slices.Equal(cr.Rules[0].Resources, []string{"pullgate"}) || !slices.Equal(cr.Rules[0].APIGroups, []string{""}) {
		t.Errorf("node audience role %+v", cr.Rules)
	}
	crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", agentName+"-node-audience")
	if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "Group" || crb.Subjects[0].Name != "system:nodes" {
		t.Errorf("node audience binding %+v", crb)
	}
	if objs.has("ClusterRole", agentName+"-issuer-discovery") {
		t.Error("issuer discovery role rendered without being asked for")
	}
}

func TestCustomPaths(t *testing.T) {
	objs := mustRender(t, agentValues+`
    preset: custom
    binDir: /opt/kubelet/cred-bin/
    configPath: /opt/kubelet/cred/config.yaml
    mountConfigDir: true
    pluginName: pullgate
    dockerCredentialLink: false
    cacheDuration: 90s
`)
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	checkHostPath(t, ds.Spec.Template.Spec, "credential-provider-bin", "/opt/kubelet/cred-bin", corev1.HostPathDirectoryOrCreate)
	checkHostPath(t, ds.Spec.Template.Spec, "credential-provider-config", "/opt/kubelet/cred", corev1.HostPathDirectoryOrCreate)
	host := runInit(t, ds)
	cfg := readKubeletConfig(t, filepath.Join(host, "/opt/kubelet/cred/config.yaml"))
	if p := cfg.Providers[0]; p.Name != "pullgate" || p.DefaultCacheDuration.Duration.Seconds() != 90 {
		t.Errorf("provider %+v", p)
	}
	if _, err := os.Stat(filepath.Join(host, "/opt/kubelet/cred-bin/pullgate")); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(filepath.Join(host, "/opt/kubelet/cred-bin/docker-credential-pullgate")); err == nil {
		t.Error("docker-credential-pullgate linked with dockerCredentialLink=false")
	}

	// Helper only: no config mount, no config flag.
	objs = mustRender(t, `
agent:
  joinToken: {existingSecret: node-join}
  kubelet: {writeConfig: false}
`)
	ds = get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	for _, a := range ds.Spec.Template.Spec.InitContainers[0].Args {
		if strings.HasPrefix(a, "--config") || a == "--" {
			t.Errorf("writeConfig=false: init arg %s", a)
		}
	}
	if objs.has("Secret", agentName+"-join-token") {
		t.Error("chart created a join token Secret next to existingSecret")
	}
	if got := volume(t, ds.Spec.Template.Spec, "join-token").Secret.SecretName; got != "node-join" {
		t.Errorf("join token from %s", got)
	}

	// No init container at all.
	objs = mustRender(t, `
agent:
  joinToken: {value: x}
  kubelet: {install: false}
`)
	if ic := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec.InitContainers; len(ic) != 0 {
		t.Errorf("install=false: init containers %v", ic)
	}
}

func TestHubReplicas(t *testing.T) {
	for _, c := range []struct {
		values  string
		missing []string
	}{
		{"hub: {replicas: 3}", []string{"PostgreSQL", "hub.nats.url", "hub.keys.existingSecret"}},
		{"hub: {replicas: 2, database: {url: 'postgres://pg@db/pullgate'}}", []string{"hub.nats.url", "hub.keys.existingSecret"}},
		{"hub: {replicas: 2, database: {existingSecret: db}, nats: {url: 'tls://nats:4222'}}", []string{"hub.keys.existingSecret"}},
	} {
		_, err := render(t, c.values+"\nagent: {enabled: false}\n")
		if err == nil {
			t.Errorf("%s: rendered, want a failure", c.values)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "more than one hub replica needs") {
			t.Errorf("%s: unclear error: %s", c.values, msg)
		}
		for _, m := range c.missing {
			if !strings.Contains(msg, m) {
				t.Errorf("%s: error does not name %s: %s", c.values, m, msg)
			}
		}
	}

	// A NATS cluster: every node's URL, for the hubs and the agents.
	const cluster = "tls://nats-1.example.com:4222,tls://nats-2.example.com:4222,tls://nats-3.example.com:4222"
	cobjs := mustRender(t, `
agent: {joinToken: {value: x}, kubelet: {matchImages: [ghcr.io]}, natsCA: {secretName: nats-ca}}
hub:
  replicas: 3
  database: {existingSecret: db}
  nats: {url: "`+cluster+`", caSecret: nats-ca}
  keys: {existingSecret: pullgate-hub-keys}
`)
	if a := get[appsv1.Deployment](t, cobjs, "Deployment", hubName).Spec.Template.Spec.Containers[0].Args; !slices.Contains(a, "--nats-url="+cluster) {
		t.Errorf("hub args with a NATS cluster: %v", a)
	}
	if a := get[appsv1.DaemonSet](t, cobjs, "DaemonSet", agentName).Spec.Template.Spec.Containers[0].Args; !slices.Contains(a, "--nats-url="+cluster) {
		t.Errorf("agent args with a NATS cluster: %v", a)
	}
	pdb := get[policyv1.PodDisruptionBudget](t, cobjs, "PodDisruptionBudget", hubName)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector == nil ||
		!maps.Equal(pdb.Spec.Selector.MatchLabels, get[appsv1.Deployment](t, cobjs, "Deployment", hubName).Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}
	if objs := mustRender(t, "agent: {enabled: false}\n"); objs.has("PodDisruptionBudget", hubName) {
		t.Error("a single replica renders a PodDisruptionBudget")
	}

	objs := mustRender(t, `
agent: {enabled: false}
hub:
  replicas: 3
  database: {url: "postgres://pullgate:pw@db.example.com:5432/pullgate?sslmode=require"}
  nats: {url: "tls://nats.example.com:4222", caSecret: nats-ca}
  keys: {existingSecret: pullgate-hub-keys}
`)
	if objs.has("PersistentVolumeClaim", hubName+"-data") {
		t.Error("HA hub renders a ReadWriteOnce PVC")
	}
	d := get[appsv1.Deployment](t, objs, "Deployment", hubName)
	if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	hub := pod.Containers[0]
	embedded := func(a string) bool {
		return strings.HasPrefix(a, "--nats-listen") || strings.HasPrefix(a, "--nats-tls")
	}
	if !slices.Contains(hub.Args, "--nats-url=tls://nats.example.com:4222") || !slices.Contains(hub.Args, "--nats-ca=/etc/pullgate/nats-ca/ca.crt") ||
		slices.ContainsFunc(hub.Args, embedded) {
		t.Errorf("hub args %v", hub.Args)
	}
	env := map[string]*corev1.SecretKeySelector{}
	for _, e := range hub.Env {
		if e.Value != "" {
			t.Errorf("env %s has a literal value", e.Name)
		}
		env[e.Name] = e.ValueFrom.SecretKeyRef
	}
	if s := env["PULLGATE_DATABASE"]; s == nil || s.Name != hubName+"-database" || s.Key != "url" {
		t.Errorf("PULLGATE_DATABASE from %+v", s)
	}
	if s := env["PULLGATE_MASTER_KEY"]; s == nil || s.Name != "pullgate-hub-keys" || s.Key != "master-key" {
		t.Errorf("PULLGATE_MASTER_KEY from %+v", s)
	}
	db := get[corev1.Secret](t, objs, "Secret", hubName+"-database")
	if !strings.HasPrefix(string(db.Data["url"]), "postgres://pullgate:pw@") {
		t.Errorf("database secret %q", db.Data["url"])
	}
	if v := volume(t, pod, "data"); v.EmptyDir == nil {
		t.Errorf("HA data volume %+v, want emptyDir", v)
	}
	var keyFiles []string
	for _, m := range hub.VolumeMounts {
		if m.Name == "keys" {
			keyFiles = append(keyFiles, m.SubPath)
			if m.MountPath != "/var/lib/pullgate/"+m.SubPath || !m.ReadOnly {
				t.Errorf("key mount %+v", m)
			}
		}
	}
	if !slices.Equal(keyFiles, []string{"admin.token", "nats-issuer.nk", "nats-hub.password"}) {
		t.Errorf("key files %v", keyFiles)
	}
	svc := get[corev1.Service](t, objs, "Service", hubName)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("external NATS: service ports %+v", svc.Spec.Ports)
	}
	checkHubFlags(t, hub.Args)
}

// TestContainerdMirrors: with containerd's config_path the agent keeps
// hosts.toml files there, on the host.
func TestContainerdMirrors(t *testing.T) {
	objs := mustRender(t, agentValues+`
  containerd:
    configPath: /etc/containerd/certs.d/
    hubCAFile: /etc/pullgate/hub-ca.crt
    mirrorHosts: [registry.corp, "registry.corp:5000"]
hub:
  publicURL: https://hub.example.com
`)
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	pod := ds.Spec.Template.Spec
	checkHostPath(t, pod, "containerd-hosts", "/etc/containerd/certs.d", corev1.HostPathDirectoryOrCreate)
	agent := pod.Containers[0]
	if m := mount(t, agent, "containerd-hosts"); m.MountPath != "/etc/containerd/certs.d" || m.ReadOnly {
		t.Errorf("mount %+v: the agent writes there, at the host's path", m)
	}
	for _, a := range []string{"--containerd-config-path=/etc/containerd/certs.d", "--hub-url=https://hub.example.com",
		"--hub-ca=/etc/pullgate/hub-ca.crt", "--mirror-host=registry.corp", "--mirror-host=registry.corp:5000", "--mirror-grace=15m"} {
		if !slices.Contains(agent.Args, a) {
			t.Errorf("agent args %v: no %s", agent.Args, a)
		}
	}
	checkAgentFlags(t, agent.Args)

	// Agent only: the hub's URL must be given.
	_, err := render(t, `
hub: {enabled: false}
agent:
  natsURL: tls://hub.example.com:4222
  joinToken: {value: x}
  kubelet: {matchImages: [hub.example.com]}
  containerd: {configPath: /etc/containerd/certs.d}
`)
	if err == nil || !strings.Contains(err.Error(), "agent.containerd.hubURL is required") {
		t.Errorf("no hub URL: %v", err)
	}
	// CRI-O/podman mirrors the agent does not manage.
	ext := get[appsv1.DaemonSet](t, mustRender(t, agentValues+"  externalMirrorHosts: [registry.corp]\n"), "DaemonSet", agentName)
	if args := ext.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--external-mirror-host=registry.corp") {
		t.Errorf("agent args %v: no --external-mirror-host", args)
	} else {
		checkAgentFlags(t, args)
	}
	if _, err := render(t, agentValues+"  containerd: {mirrorHosts: [ghcr.io]}\n"); err == nil || !strings.Contains(err.Error(), "need agent.containerd.configPath") {
		t.Errorf("mirror hosts without config path: %v", err)
	}
	if objs := mustRender(t, agentValues); objs.has("DaemonSet", agentName) {
		for _, v := range get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec.Volumes {
			if v.Name == "containerd-hosts" {
				t.Error("containerd hosts mounted by default")
			}
		}
	}
}

func TestAgentOnly(t *testing.T) {
	objs := mustRender(t, `
hub: {enabled: false}
agent:
  natsURL: tls://hub.example.com:4222
  natsCA: {configMapName: hub-nats-ca}
  joinToken: {existingSecret: join, existingSecretKey: pgj}
  kubelet: {matchImages: [hub.example.com]}
`)
	for _, k := range objs.keys() {
		if strings.Contains(k, "-hub") {
			t.Errorf("hub.enabled=false renders %s", k)
		}
	}
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	if a := ds.Spec.Template.Spec.Containers[0].Args; !slices.Contains(a, "--nats-url=tls://hub.example.com:4222") || !slices.Contains(a, "--nats-ca=/etc/pullgate/nats-ca/ca.crt") {
		t.Errorf("agent args %v", a)
	}
	if v := volume(t, ds.Spec.Template.Spec, "nats-ca"); v.ConfigMap == nil || v.ConfigMap.Name != "hub-nats-ca" || v.ConfigMap.Items[0].Key != "ca.crt" {
		t.Errorf("NATS CA volume %+v", v)
	}
	if it := volume(t, ds.Spec.Template.Spec, "join-token").Secret.Items; it[0].Key != "pgj" || it[0].Path != "token" {
		t.Errorf("join token items %+v", it)
	}
}

func TestIssuerDiscoveryRBAC(t *testing.T) {
	objs := mustRender(t, agentValues+`
  rbac: {serviceAccountIssuerDiscovery: true}
`)
	cr := get[rbacv1.ClusterRole](t, objs, "ClusterRole", agentName+"-issuer-discovery")
	if len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Verbs, []string{"get"}) ||
		!slices.Equal(cr.Rules[0].NonResourceURLs, []string{"/.well-known/openid-configuration", "/openid/v1/jwks"}) ||
		len(cr.Rules[0].Resources) != 0 {
		t.Errorf("issuer discovery rules %+v", cr.Rules)
	}
	crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", agentName+"-issuer-discovery")
	if crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != agentName || crb.Subjects[0].Namespace != namespace {
		t.Errorf("binding subjects %+v", crb.Subjects)
	}
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	sa := get[corev1.ServiceAccount](t, objs, "ServiceAccount", agentName)
	if !*ds.Spec.Template.Spec.AutomountServiceAccountToken || !*sa.AutomountServiceAccountToken {
		t.Error("issuer discovery needs the service account token mounted")
	}
	if args := ds.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--sa-jwks=auto") {
		t.Errorf("agent args %v: the agent is not told to offer the keys", args)
	}
	if objs.has("ClusterRole", agentName+"-node-audience") {
		t.Error("node audience role without shared")
	}
}

func TestTLS(t *testing.T) {
	objs := mustRender(t, agentValues+`
hub:
  tls: {secretName: hub-tls}
  publicURL: https://hub.example.com
  service: {type: NodePort, httpNodePort: 30443}
`)
	d := get[appsv1.Deployment](t, objs, "Deployment", hubName)
	hub := d.Spec.Template.Spec.Containers[0]
	for _, p := range []*corev1.Probe{hub.LivenessProbe, hub.ReadinessProbe, hub.StartupProbe} {
		if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("TLS hub probed over %s", p.HTTPGet.Scheme)
		}
	}
	for _, a := range []string{"--tls-cert=/etc/pullgate/tls/tls.crt", "--tls-key=/etc/pullgate/tls/tls.key", "--public-url=https://hub.example.com"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v: no %s", hub.Args, a)
		}
	}
	if v := volume(t, d.Spec.Template.Spec, "tls"); v.Secret.SecretName != "hub-tls" {
		t.Errorf("tls volume %+v", v)
	}
	svc := get[corev1.Service](t, objs, "Service", hubName)
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30443 {
		t.Errorf("service %+v", svc.Spec)
	}
}

func TestInvalidValues(t *testing.T) {
	for _, c := range []struct{ values, want string }{
		{"agent: {kubelet: {matchImages: [ghcr.io]}}", "agent.joinToken.value or agent.joinToken.existingSecret is required"},
		{"agent: {joinToken: {value: x, existingSecret: other}, kubelet: {matchImages: [ghcr.io]}}", "not both"},
		{"agent: {joinToken: {value: x}}", "agent.kubelet.matchImages is required"},
		{"agent: {joinToken: {value: x}, kubelet: {matchImages: [a.io], preset: custom}}", "agent.kubelet.binDir is required"},
		{"agent: {joinToken: {value: x}, kubelet: {matchImages: [a.io], preset: custom, binDir: /b}}", "agent.kubelet.configPath is required"},
		{"agent: {joinToken: {value: x}, kubelet: {matchImages: [a.io], preset: k3S}}", "preset"},
		{"agent: {joinToken: {value: x}, kubelet: {matchImages: [a.io], sharde: true}}", "sharde"},
		{"agent: {joinToken: {value: x}, kubelet: {matchImages: ['https://a.io']}}", "matchImages"},
		{"agent: {enabled: false}\nhub: {database: {url: 'mysql://db/x'}}", "postgres://"},
		{"agent: {enabled: false}\nhub: {tokenTTL: 10 minutes}", "tokenTTL"},
		{"agent: {enabled: false}\nhub: {replicas: 0}", "replicas"},
		{"agent: {enabled: false}\nhub: {nats: {url: 'tls://n1:4222,https://n2:4222'}}", `"https://n2:4222" is not a nats://`},
		{"agent: {enabled: false}\nhub: {nats: {url: 'tls://n1:4222,,tls://n3:4222'}}", `"" is not a nats://`},
		{"hub: {enabled: false}\nagent: {joinToken: {value: x}, kubelet: {matchImages: [a.io]}}", "agent.natsURL is required"},
		{"hubb: {}", "hubb"},
		{"agent: {enabled: false}\nhub: {akash: {tenants: true}}", "hub.akash.tenants needs hub.publicURL"},
		{"agent: {enabled: false}\nhub: {akash: {tenant: true}}", "tenant"},
	} {
		_, err := render(t, c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %q: err %v, want one mentioning %q", c.values, err, c.want)
		}
	}
}

// TestNotes renders NOTES.txt (helm template skips it) through a copy of
// the chart with the notes as a manifest.
func TestNotes(t *testing.T) {
	chart := filepath.Join(t.TempDir(), chartDir)
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "packaging", "helm", chartDir), chart).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(chart, "templates", "zz-notes.yaml"), []byte("text: |\n{{ include \"pullgate.notes\" . | indent 2 }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := helmTemplate(t, chart, agentValues+"    preset: k3s\n    shared: true\n", "--show-only", "templates/zz-notes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var notes struct{ Text string }
	if err := yaml.UnmarshalStrict(out, &notes); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, s := range []string{
		"--image-credential-provider-bin-dir=/var/lib/rancher/credentialprovider/bin",
		"--image-credential-provider-config=/var/lib/rancher/credentialprovider/config.yaml",
		"systemctl restart k3s", "KubeletServiceAccountTokenForCredentialProviders", "--token-file /var/lib/pullgate/admin.token",
		"get secret " + hubName + "-nats-tls -o jsonpath='{.data.ca\\.crt}'",
	} {
		if !strings.Contains(notes.Text, s) {
			t.Errorf("NOTES lack %q:\n%s", s, notes.Text)
		}
	}
}

func TestLint(t *testing.T) {
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(agentValues), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(helmBin(t), "lint", "--strict", "--values", vf, filepath.Join(repoRoot(t), "packaging", "helm", chartDir)).CombinedOutput()
	if err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

func mount(t *testing.T, c corev1.Container, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("container %s does not mount %s", c.Name, name)
	return corev1.VolumeMount{}
}

func checkHostPath(t *testing.T, pod corev1.PodSpec, name, path string, typ corev1.HostPathType) {
	t.Helper()
	v := volume(t, pod, name)
	if v.HostPath == nil || v.HostPath.Path != path || v.HostPath.Type == nil || *v.HostPath.Type != typ {
		t.Errorf("volume %s: %+v, want hostPath %s (%s)", name, v.HostPath, path, typ)
	}
}

// Binaries for the contract checks, built once.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "pullgate-chart-test")
		if binErr != nil {
			return
		}
		for name, pkg := range map[string]string{
			"pullgate-agent":        "./agent/cmd/pullgate-agent",
			"pullgate-hub":          "./hub/cmd/pullgate-hub",
			"pullgate-node-install": "./packaging/cmd/pullgate-node-install",
		} {
			if binErr = testbuild.Build(pkg, filepath.Join(binDir, name)); binErr != nil {
				return
			}
		}
		// The image's helper; only its bytes matter here.
		binErr = os.WriteFile(filepath.Join(binDir, "pullgate-credential-provider"), []byte("helper"), 0o755)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runInit runs the DaemonSet's init container as the kubelet would, with
// every hostPath volume mapped under a temporary "host" directory (files
// the kubelet would create with FileOrCreate are created empty), and
// returns that directory.
func runInit(t *testing.T, ds *appsv1.DaemonSet) string {
	t.Helper()
	bins := binaries(t)
	host := t.TempDir()
	pod := ds.Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("init containers: %d", len(pod.InitContainers))
	}
	init := pod.InitContainers[0]
	if init.Image != pod.Containers[0].Image {
		t.Errorf("init image %s, agent image %s", init.Image, pod.Containers[0].Image)
	}
	if len(init.Command) != 1 || init.Command[0] != image.BinDir+"/pullgate-node-install" || !slices.Contains(image.Agent().Binaries, "pullgate-node-install") {
		t.Fatalf("init command %v", init.Command)
	}
	remap := map[string]string{} // container path -> fake host path
	for _, m := range init.VolumeMounts {
		v := volume(t, pod, m.Name)
		if v.HostPath == nil {
			t.Fatalf("init mounts non-hostPath %s", m.Name)
		}
		hp := filepath.Join(host, v.HostPath.Path)
		switch *v.HostPath.Type {
		case corev1.HostPathDirectoryOrCreate:
			if err := os.MkdirAll(hp, 0o755); err != nil {
				t.Fatal(err)
			}
		case corev1.HostPathFileOrCreate:
			if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hp, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("hostPath type %s", *v.HostPath.Type)
		}
		remap[m.MountPath] = hp
	}
	var args []string
	for _, a := range init.Args {
		for from, to := range remap {
			if i := strings.Index(a, from); i >= 0 {
				a = a[:i] + to + a[i+len(from):]
			}
		}
		args = append(args, a)
	}
	cmd := exec.Command(filepath.Join(bins, "pullgate-node-install"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init container %v: %v\n%s", args, err, out)
	}
	t.Logf("init container:\n%s", out)
	return host
}

func readKubeletConfig(t *testing.T, path string) kubeletv1.CredentialProviderConfig {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeletconfig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIVersion != kubeletconfig.ConfigAPIVersion || cfg.Kind != kubeletconfig.ConfigKind || len(cfg.Providers) != 1 {
		t.Fatalf("kubelet config %+v", cfg)
	}
	return cfg
}

// checkAgentFlags: every --flag the chart gives `pullgate-agent run` is
// one the binary has.
func checkAgentFlags(t *testing.T, args []string) {
	t.Helper()
	checkFlags(t, filepath.Join(binaries(t), "pullgate-agent"), []string{"run", "--help"}, args[1:])
}

func checkHubFlags(t *testing.T, args []string) {
	t.Helper()
	checkFlags(t, filepath.Join(binaries(t), "pullgate-hub"), []string{"serve", "--help"}, args[1:])
}

func checkFlags(t *testing.T, bin string, helpArgs, args []string) {
	t.Helper()
	help, err := exec.Command(bin, helpArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, helpArgs, err, help)
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") || !bytes.Contains(help, []byte(" "+name+" ")) {
			t.Errorf("%s %s: flag %s is not in its --help", filepath.Base(bin), helpArgs[0], name)
		}
	}
}

func TestRemoveRevokedImages(t *testing.T) {
	ds := get[appsv1.DaemonSet](t, mustRender(t, agentValues+"  removeRevokedImages: {enabled: true, criSocket: /run/k3s/containerd/containerd.sock}\n"), "DaemonSet", agentName)
	pod := ds.Spec.Template.Spec
	checkHostPath(t, pod, "cri-socket", "/run/k3s/containerd/containerd.sock", corev1.HostPathSocket)
	agent := pod.Containers[0]
	if m := mount(t, agent, "cri-socket"); m.MountPath != "/run/k3s/containerd/containerd.sock" {
		t.Errorf("mount %+v", m)
	}
	for _, a := range []string{"--remove-revoked-images", "--cri-endpoint=unix:///run/k3s/containerd/containerd.sock"} {
		if !slices.Contains(agent.Args, a) {
			t.Errorf("agent args %v: no %s", agent.Args, a)
		}
	}
	checkAgentFlags(t, agent.Args)
	// Off by default: no runtime socket in the agent.
	def := get[appsv1.DaemonSet](t, mustRender(t, agentValues), "DaemonSet", agentName).Spec.Template.Spec
	for _, v := range def.Volumes {
		if v.Name == "cri-socket" {
			t.Error("the CRI socket is mounted by default")
		}
	}
	if slices.Contains(def.Containers[0].Args, "--remove-revoked-images") || def.HostNetwork {
		t.Errorf("default agent: %v, hostNetwork %v", def.Containers[0].Args, def.HostNetwork)
	}
	if _, err := render(t, agentValues+"  removeRevokedImages: {enabled: true, criSocket: relative.sock}\n"); err == nil {
		t.Error("a relative CRI socket path was accepted")
	}
}

// hub.akash.tenants turns on tenant self-service; off by default.
func TestAkashTenants(t *testing.T) {
	hubArgs := func(values string) []string {
		d := get[appsv1.Deployment](t, mustRender(t, values), "Deployment", hubName)
		return d.Spec.Template.Spec.Containers[0].Args
	}
	if args := hubArgs(agentValues); slices.Contains(args, "--akash-tenants") {
		t.Errorf("default hub args %v have --akash-tenants", args)
	}
	args := hubArgs(agentValues + "hub: {publicURL: https://hub.example.com, akash: {tenants: true}}\n")
	if !slices.Contains(args, "--akash-tenants") {
		t.Errorf("hub args %v: no --akash-tenants", args)
	}
	checkHubFlags(t, args)
}

func TestHostNetwork(t *testing.T) {
	objs := mustRender(t, agentValues+"  hostNetwork: true\nhub:\n  hostNetwork: true\n")
	for _, pod := range []corev1.PodSpec{get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec,
		get[appsv1.Deployment](t, objs, "Deployment", hubName).Spec.Template.Spec} {
		if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("hostNetwork %v, dnsPolicy %q", pod.HostNetwork, pod.DNSPolicy)
		}
	}
}
