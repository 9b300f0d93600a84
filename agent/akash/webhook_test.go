package akash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	leaseNS = "ptsipcpu1uiuhtf4ovkom5fiotir3glcbrgh292gjp7gg"
	hubApp  = "hub.example.com/ghcr.io/org/app:1"
)

func providerPod(secrets ...string) corev1.Pod {
	p := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: leaseNS},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "ghcr.io/org/init:1"}},
			Containers: []corev1.Container{
				{Name: "sidecar", Image: "docker.io/library/busybox:1"},
				{Name: "web", Image: "ghcr.io/org/app:1", ImagePullPolicy: corev1.PullIfNotPresent},
			},
		},
	}
	for _, s := range secrets {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return p
}

func review(t *testing.T, op admissionv1.Operation, kind, ns string, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u-1", Operation: op, Namespace: ns,
			Kind:     metav1.GroupVersionKind{Version: "v1", Kind: kind},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: strings.ToLower(kind) + "s"},
			Object:   runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyPatch applies the webhook's JSONPatch to the pod (the ops it emits:
// replace and remove).
func applyPatch(t *testing.T, pod corev1.Pod, patch []byte) corev1.Pod {
	t.Helper()
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	for _, o := range ops {
		var idx int
		var field string
		switch {
		case o.Path == "/spec/imagePullSecrets" && o.Op == "remove":
			pod.Spec.ImagePullSecrets = nil
			continue
		case o.Path == "/spec/imagePullSecrets" && o.Op == "replace":
			pod.Spec.ImagePullSecrets = nil
			if err := json.Unmarshal(o.Value, &pod.Spec.ImagePullSecrets); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := fmtSscanf(o.Path, &field, &idx); err != nil || o.Op != "replace" {
			t.Fatalf("unexpected patch op %s %s", o.Op, o.Path)
		}
		var img string
		json.Unmarshal(o.Value, &img)
		cs := pod.Spec.Containers
		if field == "initContainers" {
			cs = pod.Spec.InitContainers
		}
		cs[idx].Image = img
	}
	return pod
}

func TestWebhook(t *testing.T) {
	maps := NewImageMaps()
	maps.Set(leaseNS, map[string]string{"ghcr.io/org/app:1": hubApp, "ghcr.io/org/init:1": "hub.example.com/ghcr.io/org/init:1"})
	other := providerPod()
	other.Namespace = "other"
	for _, tc := range []struct {
		name        string
		body        []byte
		pod         corev1.Pod
		wantImages  []string // init..., containers...
		wantSecrets []string
		wantPatch   bool
		wantStatus  int
	}{
		{name: "mapped images rewritten, docker-creds dropped, other secret kept",
			body: review(t, admissionv1.Create, "Pod", leaseNS, providerPod("docker-creds-web", "provider-wide")),
			pod:  providerPod("docker-creds-web", "provider-wide"), wantPatch: true, wantStatus: 200,
			wantImages:  []string{"hub.example.com/ghcr.io/org/init:1", "docker.io/library/busybox:1", hubApp},
			wantSecrets: []string{"provider-wide"}},
		{name: "only docker-creds: imagePullSecrets removed",
			body: review(t, admissionv1.Create, "Pod", leaseNS, providerPod("docker-creds-web")),
			pod:  providerPod("docker-creds-web"), wantPatch: true, wantStatus: 200,
			wantImages: []string{"hub.example.com/ghcr.io/org/init:1", "docker.io/library/busybox:1", hubApp}},
		{name: "namespace without a map: unchanged",
			body: review(t, admissionv1.Create, "Pod", "other", other), wantStatus: 200},
		{name: "update: unchanged",
			body: review(t, admissionv1.Update, "Pod", leaseNS, providerPod("docker-creds-web")), wantStatus: 200},
		{name: "not a pod: unchanged",
			body: review(t, admissionv1.Create, "Secret", leaseNS, map[string]any{"kind": "Secret"}), wantStatus: 200},
		{name: "pod not readable: allowed unchanged",
			body:       []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","operation":"CREATE","namespace":"` + leaseNS + `","kind":{"version":"v1","kind":"Pod"},"object":{"spec":{"containers":"x"}}}}`),
			wantStatus: 200},
		{name: "garbage", body: []byte("{not json"), wantStatus: 400},
		{name: "v1beta1 review", body: []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`), wantStatus: 400},
		{name: "no request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantStatus: 400},
		{name: "too big", body: append([]byte(`{"apiVersion":"`), bytes.Repeat([]byte("a"), maxReview+1)...), wantStatus: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh := NewWebhook(maps, nil)
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(tc.body)))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus != 200 {
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			r := out.Response
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || r == nil || r.UID != "u-1" || !r.Allowed {
				t.Fatalf("response %+v: want allowed, uid u-1, v1", out)
			}
			if !tc.wantPatch {
				if r.Patch != nil || r.PatchType != nil {
					t.Fatalf("unexpected patch %s", r.Patch)
				}
				return
			}
			if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Fatalf("patch type %v", r.PatchType)
			}
			got := applyPatch(t, tc.pod, r.Patch)
			var imgs, secrets []string
			for _, c := range append(got.Spec.InitContainers, got.Spec.Containers...) {
				imgs = append(imgs, c.Image)
			}
			for _, s := range got.Spec.ImagePullSecrets {
				secrets = append(secrets, s.Name)
			}
			if strings.Join(imgs, ",") != strings.Join(tc.wantImages, ",") {
				t.Errorf("images %v, want %v", imgs, tc.wantImages)
			}
			if strings.Join(secrets, ",") != strings.Join(tc.wantSecrets, ",") {
				t.Errorf("pull secrets %v, want %v", secrets, tc.wantSecrets)
			}
		})
	}
}

// A pod whose images are not in the map keeps its pull secrets: they may be
// what its pull needs.
func TestWebhookUnmappedImagesKeepSecrets(t *testing.T) {
	maps := NewImageMaps()
	maps.Set(leaseNS, map[string]string{"ghcr.io/org/other:1": "hub.example.com/ghcr.io/org/other:1"})
	wh := NewWebhook(maps, nil)
	req := &admissionv1.AdmissionRequest{UID: "u", Operation: admissionv1.Create, Namespace: leaseNS,
		Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}}
	req.Object.Raw, _ = json.Marshal(providerPod("docker-creds-web"))
	if r := wh.Review(req); !r.Allowed || r.Patch != nil {
		t.Fatalf("want allowed unchanged, got %+v", r)
	}
}

// fmtSscanf splits /spec/<field>/<index>/image.
func fmtSscanf(path string, field *string, idx *int) (int, error) {
	parts := strings.Split(strings.TrimPrefix(path, "/spec/"), "/")
	if len(parts) != 3 || parts[2] != "image" {
		return 0, fmt.Errorf("path %s", path)
	}
	*field = parts[0]
	return fmt.Sscanf(parts[1], "%d", idx)
}
