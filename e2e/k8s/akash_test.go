//go:build e2e_k8s

package k8s

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/akash"
)

// What the Akash provider (akash-network/provider, cluster/kube/builder)
// puts on the objects of a lease, reproduced here so the test's cluster
// looks to pullgate exactly as a provider's does.
const (
	akashManaged         = "akash.network"
	akashNamespaceLabel  = "akash.network/namespace"
	akashResourceVersion = "akash.network/manifest.resource.version"
	// manifestNamespace is the provider's --k8s-manifest-ns default.
	manifestNamespace = "lease"
)

// akashKey is an Akash account: a secp256k1 key made at run time and its
// address.
type akashKey struct {
	hex, address string
}

func newAkashKey(t *testing.T) akashKey {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := akash.AddressOf(k.PubKey().SerializeCompressed())
	if err != nil {
		t.Fatal(err)
	}
	return akashKey{hex: hex.EncodeToString(k.Serialize()), address: addr}
}

// keyFile writes the key as `provider-services keys export --unarmored-hex`
// prints it, mode 0600.
func (k akashKey) keyFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, k.address+".key")
	writeFile(t, p, k.hex+"\n", 0o600)
	return p
}

// installAkashCRDs creates the provider's CRDs (testdata/akash-crd.yaml,
// vendored from the provider), one per YAML document, and waits until the
// API server serves each.
func (c *cluster) installAkashCRDs() {
	t := c.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testupstream.RepoRoot(t), "e2e", "k8s", "testdata", "akash-crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("akash-crd.yaml: %v", err)
		}
		var crd struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := json.Unmarshal(j, &crd); err != nil || crd.Kind != "CustomResourceDefinition" || crd.Metadata.Name == "" {
			t.Fatalf("akash-crd.yaml: a document that is not a CRD (%v): %.200s", err, j)
		}
		c.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json.RawMessage(j))
		names = append(names, crd.Metadata.Name)
	}
	if len(names) != 3 {
		t.Fatalf("akash-crd.yaml: %d CRDs (%v), want manifests, providerhosts, providerleasedips", len(names), names)
	}
	for _, n := range names {
		waitFor(t, time.Minute, "CRD "+n+" established", func() (bool, error) {
			var crd struct {
				Status struct {
					Conditions []struct{ Type, Status string }
				}
			}
			if err := c.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+n, &crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == "Established" && cond.Status == "True" {
					return true, nil
				}
			}
			return false, fmt.Errorf("conditions %+v", crd.Status.Conditions)
		})
	}
	waitFor(t, time.Minute, "manifests.akash.network served", func() (bool, error) {
		code, body, err := c.raw("GET", "/apis/akash.network/v2beta2/manifests", nil)
		return code == 200, fmt.Errorf("%d %v %.200s", code, err, body)
	})
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// leaseLabels are the labels the provider puts on a lease namespace (and
// the Manifest CR): builder.labels() plus AppendLeaseLabels. rv is the
// manifest's resource version, which changes on every reconcile.
func leaseLabels(l akash.LeaseID, rv string) map[string]string {
	return map[string]string{
		akashManaged:         "true",
		akashNamespaceLabel:  l.Namespace(),
		akashResourceVersion: rv,
		akash.LabelOwner:     l.Owner,
		akash.LabelDSeq:      strconv.FormatUint(l.DSeq, 10),
		akash.LabelGSeq:      strconv.FormatUint(uint64(l.GSeq), 10),
		akash.LabelOSeq:      strconv.FormatUint(uint64(l.OSeq), 10),
		akash.LabelProvider:  l.Provider,
	}
}

// workloadLabels are those of a lease's Deployment, its pod template and
// its Secrets (Workload.labels()): no lease id, the service's name.
func workloadLabels(l akash.LeaseID, svc, rv string) map[string]string {
	return map[string]string{
		akashManaged:         "true",
		akashNamespaceLabel:  l.Namespace(),
		akashResourceVersion: rv,
		akash.LabelService:   svc,
	}
}

// leaseNamespace creates the lease's namespace as the provider does
// (builder/namespace.go) and waits for its default service account.
func (c *cluster) leaseNamespace(l akash.LeaseID, rv string) string {
	c.t.Helper()
	ns := l.Namespace()
	c.create("/api/v1/namespaces", &corev1.Namespace{TypeMeta: meta("v1", "Namespace"),
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: leaseLabels(l, rv)}})
	waitFor(c.t, time.Minute, "default service account in "+ns, func() (bool, error) {
		code, _, err := c.raw("GET", "/api/v1/namespaces/"+ns+"/serviceaccounts/default", nil)
		return code == 200, err
	})
	return ns
}

// relabelLease does to the namespace what the provider's reconcile does
// (ns.Update, updateAkashLabels): every label under "akash.network" is
// dropped and the provider's set written back, with a new resource
// version; other labels stay.
func (c *cluster) relabelLease(l akash.LeaseID, rv string) {
	c.t.Helper()
	var ns corev1.Namespace
	if err := c.get("/api/v1/namespaces/"+l.Namespace(), &ns); err != nil {
		c.t.Fatal(err)
	}
	labels := map[string]string{}
	for k, v := range ns.Labels {
		if !strings.HasPrefix(k, akashManaged) {
			labels[k] = v
		}
	}
	for k, v := range leaseLabels(l, rv) {
		labels[k] = v
	}
	ns.Labels = labels
	code, b, err := c.raw("PUT", "/api/v1/namespaces/"+ns.Name, &ns)
	if err != nil || code != 200 {
		c.t.Fatalf("relabel %s: %d %v %s", ns.Name, code, err, b)
	}
}

// deleteNamespace deletes ns and waits until it is gone (its pods first,
// at once: the suite's pods have no grace period).
func (c *cluster) deleteNamespace(ns string) {
	c.t.Helper()
	code, b, err := c.raw("DELETE", "/api/v1/namespaces/"+ns, nil)
	if err != nil || (code/100 != 2 && code != 404) {
		c.t.Fatalf("delete namespace %s: %d %v %s", ns, code, err, b)
	}
	waitFor(c.t, 2*time.Minute, "namespace "+ns+" gone", func() (bool, error) {
		code, _, err := c.raw("GET", "/api/v1/namespaces/"+ns, nil)
		return code == 404, err
	})
}

// providerDeployment is the Deployment the provider makes for one service
// of a lease (builder/deployment.go, workload.go): its labels, one
// container with IfNotPresent, no service-account token mounted and the
// default service account, RollingUpdate with maxSurge 0, and
// docker-creds-<svc> as image pull secret when the SDL had credentials.
// What differs is what this node needs: host network (no CNI), a
// toleration for the not-ready node, no grace period.
func providerDeployment(l akash.LeaseID, svc, image, rv string, credentials bool) *appsv1.Deployment {
	f, zero := false, int64(0)
	one, history := int32(1), int32(10)
	maxSurge, maxUnavailable := intstr.FromInt32(0), intstr.FromInt32(1)
	labels := workloadLabels(l, svc, rv)
	d := &appsv1.Deployment{TypeMeta: meta("apps/v1", "Deployment"),
		ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: l.Namespace(), Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				akashManaged: "true", akashNamespaceLabel: l.Namespace(), akash.LabelService: svc}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}},
			RevisionHistoryLimit: &history,
			Replicas:             &one,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &f},
					AutomountServiceAccountToken: &f,
					ServiceAccountName:           "",
					Containers: []corev1.Container{{Name: svc, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
						SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &f, Privileged: &f, AllowPrivilegeEscalation: &f}}},
					// This node:
					HostNetwork:                   true,
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					TerminationGracePeriodSeconds: &zero,
				},
			},
		},
	}
	if credentials {
		d.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "docker-creds-" + svc}}
	}
	return d
}

// runDeployment creates the Deployment and waits until its pod's container
// runs or its image pull fails; it returns the outcome and the pod.
func (c *cluster) runDeployment(d *appsv1.Deployment) (outcome, corev1.Pod) {
	c.t.Helper()
	start := time.Now()
	c.create("/apis/apps/v1/namespaces/"+d.Namespace+"/deployments", d)
	p := c.deploymentPod(d.Namespace, d.Name, "")
	return c.waitPod(d.Namespace, p.Name, start, 3*time.Minute), p
}

// deploymentPod waits for a live pod of the service svc in ns other than
// the pod named not, and returns it.
func (c *cluster) deploymentPod(ns, svc, not string) corev1.Pod {
	c.t.Helper()
	var pod corev1.Pod
	waitFor(c.t, time.Minute, "a pod of "+ns+"/"+svc, func() (bool, error) {
		var l corev1.PodList
		if err := c.get("/api/v1/namespaces/"+ns+"/pods?labelSelector="+akash.LabelService+"%3D"+svc, &l); err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && p.Name != not {
				pod = p
				return true, nil
			}
		}
		return false, fmt.Errorf("%d pods", len(l.Items))
	})
	return pod
}

// dockerConfigJSON is what the provider writes into docker-creds-<svc>
// (builder/service_credentials.go encodeSecret).
func dockerConfigJSON(host, user, pass, email string) []byte {
	type entry struct {
		Username string `json:"username,omitempty"`
		Password string `json:"password,omitempty"`
		Email    string `json:"email,omitempty"`
		Auth     string `json:"auth,omitempty"`
	}
	b, _ := json.Marshal(map[string]map[string]entry{"auths": {host: {Username: user, Password: pass, Email: email,
		Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
	return b
}

// dockerCredsSecret is the provider's docker-creds-<svc> Secret of a
// service whose SDL had a credentials block.
func dockerCredsSecret(l akash.LeaseID, svc, rv, host, user, pass string) *corev1.Secret {
	return &corev1.Secret{TypeMeta: meta("v1", "Secret"),
		ObjectMeta: metav1.ObjectMeta{Name: "docker-creds-" + svc, Namespace: l.Namespace(), Labels: workloadLabels(l, svc, rv)},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON(host, user, pass, "")}}
}

// manifestService is one service of a Manifest CR; creds nil for an SDL
// without a credentials block.
type manifestService struct {
	name, image string
	creds       *manifestCreds
}

type manifestCreds struct{ host, email, username, password string }

// manifestCR is the Manifest the provider stores for a lease
// (v2beta2.NewManifest, builder/manifest.go): named after the lease
// namespace, in namespace "lease", labelled as the namespace, the SDL's
// credentials in spec.group.services[].credentials.
func manifestCR(l akash.LeaseID, rv string, services []manifestService) map[string]any {
	var svcs []map[string]any
	for _, s := range services {
		m := map[string]any{"name": s.name, "image": s.image, "count": 1,
			"resources": map[string]any{"id": 1, "cpu": map[string]any{"units": 100}, "memory": map[string]any{"size": "134217728"},
				"storage": []map[string]any{{"name": "default", "size": "536870912"}}},
			"expose": []map[string]any{{"port": 80, "external_port": 80, "proto": "TCP", "global": true, "endpoint_sequence_number": 0}}}
		if s.creds != nil {
			m["credentials"] = map[string]any{"host": s.creds.host, "email": s.creds.email,
				"username": s.creds.username, "password": s.creds.password}
		}
		svcs = append(svcs, m)
	}
	return map[string]any{
		"apiVersion": "akash.network/v2beta2", "kind": "Manifest",
		"metadata": map[string]any{"name": l.Namespace(), "namespace": manifestNamespace, "labels": leaseLabels(l, rv)},
		"spec": map[string]any{
			"lease_id": map[string]any{"owner": l.Owner, "dseq": strconv.FormatUint(l.DSeq, 10), "gseq": l.GSeq,
				"oseq": l.OSeq, "provider": l.Provider},
			"group": map[string]any{"name": "akash", "services": svcs},
		},
	}
}
