package akash

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/pullgate/pullgate/internal/testkube"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testtls"
)

// TestImportAndWebhookAgainstAPIServer: a provider-shaped Manifest with
// credentials is imported, and the real API server, calling the webhook,
// stores the lease's pods with hub images and without docker-creds-*.
func TestImportAndWebhookAgainstAPIServer(t *testing.T) {
	api := testkube.StartAPIServer(t)
	kube, cs := kubeClient(t, api)
	dc, err := dynamic.NewForConfig(kube)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The Manifest CRD, then namespace lease and a lease namespace.
	installManifestCRD(ctx, t, dc)
	lease := testLease
	for _, ns := range []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "lease"}}, leaseNamespace(lease, "1"),
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller-manager: the ServiceAccount admission plugin
		// wants the default service account to exist.
		if ns.Name != "lease" {
			if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mani unstructured.Unstructured
	mani.Object = readJSON(t, "testdata/manifest.json").Object
	if _, err := dc.Resource(ManifestGVR).Namespace("lease").Create(ctx, &mani, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	h := newRecordingHub(t, nil)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	writeToken(t, tokFile, "sa-token")
	hub, err := NewHubClient(h.srv.URL, "provider-1", tokFile, WithRetry(2, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := testtls.SelfSigned(t, dir)
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Kube: kube, Hub: hub, Resync: time.Minute, Log: slog.New(slog.NewTextHandler(logs, nil)),
			ImportCredentials: true, ManifestNamespace: "lease",
			WebhookListen: "127.0.0.1:0", WebhookCert: certFile, WebhookKey: keyFile, MetricsListen: "127.0.0.1:0",
			Started: func(m, w net.Addr) { addrs <- [2]net.Addr{m, w} }})
	}()
	a := <-addrs
	waitUntil(t, "readyz", func() bool {
		resp, err := http.Get("http://" + a[0].String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	i := waitCall(t, h, "credentials import", 0, func(hc hubCall) bool { return hc.Method == "POST" })
	imp := h.Calls()[i]
	if imp.Path != leasesPath+"/"+lease.Namespace()+"/credentials" ||
		imp.Body != `{"services":[{"name":"web","images":["ghcr.io/org/app:1"],"credentials":{"host":"ghcr.io","email":"","username":"org-bot","password":"ghp_s3cr3tPAT"}}]}` {
		t.Fatalf("import call %+v", imp)
	}

	// Register the webhook as the chart does (url form, caBundle).
	ignore, none, never := admissionregv1.Ignore, admissionregv1.SideEffectClassNone, admissionregv1.NeverReinvocationPolicy
	timeout := int32(5)
	url := "https://" + a[1].String() + WebhookPath
	mwc := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "pullgate-akash"},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name: "pods.akash.pullgate.dev", AdmissionReviewVersions: []string{"v1"}, SideEffects: &none,
			FailurePolicy: &ignore, ReinvocationPolicy: &never, TimeoutSeconds: &timeout,
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules: []admissionregv1.RuleWithOperations{{Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule: admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "akash.network/lease.id.owner", Operator: metav1.LabelSelectorOpExists}}},
		}}}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := false
	mkPod := func(ns, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"akash.network/manifest-service": "web"}},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: &f,
				Containers: []corev1.Container{{Name: "web", Image: "ghcr.io/org/app:1", ImagePullPolicy: corev1.PullIfNotPresent},
					{Name: "cache", Image: "redis:7"}},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "docker-creds-web"}}}}
	}
	// The webhook configuration takes a moment to reach the API server's
	// admission chain: create pods until one comes back mutated.
	var got *corev1.Pod
	for n := 0; n < 50; n++ {
		p, err := cs.CoreV1().Pods(lease.Namespace()).Create(ctx, mkPod(lease.Namespace(), "web-"+itoa(uint64(n))), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Containers[0].Image != "ghcr.io/org/app:1" {
			got = p
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got == nil {
		t.Fatalf("no pod was mutated; logs:\n%s", logs)
	}
	if got.Spec.Containers[0].Image != "hub.example.com/ghcr.io/org/app:1" || got.Spec.Containers[1].Image != "redis:7" ||
		len(got.Spec.ImagePullSecrets) != 0 {
		t.Fatalf("mutated pod: images %s %s, pull secrets %v", got.Spec.Containers[0].Image, got.Spec.Containers[1].Image, got.Spec.ImagePullSecrets)
	}
	// A namespace without lease labels: untouched.
	p, err := cs.CoreV1().Pods("plain").Create(ctx, mkPod("plain", "web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Containers[0].Image != "ghcr.io/org/app:1" || len(p.Spec.ImagePullSecrets) != 1 {
		t.Fatalf("pod outside lease namespaces changed: %+v", p.Spec)
	}
	if strings.Contains(logs.String(), "ghp_s3cr3tPAT") || strings.Contains(logs.String(), "sa-token") {
		t.Fatal("the log holds the registry password or the token")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func readJSON(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// installManifestCRD creates the provider's Manifest CRD and waits until
// the API server serves it.
func installManifestCRD(ctx context.Context, t *testing.T, dc dynamic.Interface) {
	t.Helper()
	crd := readJSON(t, "testdata/crd-manifests.json")
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dc.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "CRD established", func() bool {
		u, err := dc.Resource(crdGVR).Get(ctx, "manifests.akash.network", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	})
}
