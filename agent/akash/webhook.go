package akash

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
)

// WebhookPath is where the API server sends Pod admission reviews.
const WebhookPath = "/mutate-pods"

// maxReview bounds an AdmissionReview body: the API server's own request
// limit is 3 MiB.
const maxReview = 4 << 20

// CredsSecretPrefix names the provider's pull secrets
// (docker-creds-<service>).
const CredsSecretPrefix = "docker-creds-"

// ImageLookup is what the webhook needs of the image maps.
type ImageLookup interface {
	Lookup(namespace, image string) (string, bool)
}

// Webhook is a mutating admission webhook for Pod CREATE in lease
// namespaces: images the lease's credentials import mapped are pointed at
// the hub, and the provider's docker-creds-* pull secrets dropped. It
// never denies: a pod it cannot or need not change is allowed unchanged.
type Webhook struct {
	images ImageLookup
	log    *slog.Logger

	mutated, unchanged atomic.Uint64
}

// NewWebhook serves reviews with the given image maps.
func NewWebhook(images ImageLookup, log *slog.Logger) *Webhook {
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{images: images, log: log}
}

// Mutated counts pods the webhook changed; Unchanged the pods it allowed
// as they were.
func (w *Webhook) Mutated() uint64   { return w.mutated.Load() }
func (w *Webhook) Unchanged() uint64 { return w.unchanged.Load() }

// pod is the part of a Pod the webhook reads (k8s.io/api/core/v1 would add
// megabytes to the agent binary for these few fields).
type pod struct {
	Metadata struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		InitContainers   []container `json:"initContainers"`
		Containers       []container `json:"containers"`
		ImagePullSecrets []localRef  `json:"imagePullSecrets"`
	} `json:"spec"`
}

type container struct {
	Image string `json:"image"`
}

// localRef is a LocalObjectReference: kept as raw JSON so an entry the
// webhook keeps is written back exactly as it came.
type localRef = json.RawMessage

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// ServeHTTP answers one AdmissionReview (admission.k8s.io/v1).
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxReview))
	if err != nil {
		http.Error(rw, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(rw, "not an AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" || review.Request == nil {
		http.Error(rw, "want an admission.k8s.io/v1 AdmissionReview with a request", http.StatusBadRequest)
		return
	}
	resp := w.Review(review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(out)
}

// Review decides one request: always allowed, with a JSONPatch when the
// pod's images are in its namespace's map.
func (w *Webhook) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create || req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return resp
	}
	var pod pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		w.log.Warn("akash webhook: pod not readable, allowed unchanged", "namespace", req.Namespace, "err", err)
		w.unchanged.Add(1)
		return resp
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Metadata.Namespace
	}
	ops := w.patch(ns, &pod)
	if len(ops) == 0 {
		w.unchanged.Add(1)
		return resp
	}
	p, err := json.Marshal(ops)
	if err != nil {
		w.unchanged.Add(1)
		return resp
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = p, &pt
	w.mutated.Add(1)
	w.log.Info("akash webhook: pod pointed at the hub", "namespace", ns, "pod", podName(&pod), "patch_ops", len(ops))
	return resp
}

func podName(p *pod) string {
	if p.Metadata.Name != "" {
		return p.Metadata.Name
	}
	return p.Metadata.GenerateName + "*"
}

// patch rewrites mapped images; when it rewrote any, it also drops the
// provider's docker-creds-* pull secrets (the hub holds the credential
// now, and a stale secret must not be what the pull uses).
func (w *Webhook) patch(ns string, pod *pod) []patchOp {
	var ops []patchOp
	for _, list := range []struct {
		field string
		cs    []container
	}{{"initContainers", pod.Spec.InitContainers}, {"containers", pod.Spec.Containers}} {
		for i, c := range list.cs {
			if hub, ok := w.images.Lookup(ns, c.Image); ok && hub != c.Image {
				ops = append(ops, patchOp{Op: "replace", Path: "/spec/" + list.field + "/" + strconv.Itoa(i) + "/image", Value: hub})
			}
		}
	}
	if len(ops) == 0 {
		return nil
	}
	keep := []localRef{}
	for _, raw := range pod.Spec.ImagePullSecrets {
		var s struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &s) == nil && strings.HasPrefix(s.Name, CredsSecretPrefix) {
			continue
		}
		keep = append(keep, raw)
	}
	switch {
	case len(keep) == len(pod.Spec.ImagePullSecrets):
	case len(keep) == 0:
		ops = append(ops, patchOp{Op: "remove", Path: "/spec/imagePullSecrets"})
	default:
		ops = append(ops, patchOp{Op: "replace", Path: "/spec/imagePullSecrets", Value: keep})
	}
	return ops
}

// errNoTLS is returned when the webhook would listen without a certificate.
var errNoTLS = errors.New("the webhook needs --webhook-cert and --webhook-key: the API server calls webhooks over HTTPS only")

// CheckWebhookTLS checks the webhook's listen settings.
func CheckWebhookTLS(listen, cert, key string) error {
	if listen == "" {
		if cert != "" || key != "" {
			return fmt.Errorf("--webhook-cert and --webhook-key need --webhook-listen")
		}
		return nil
	}
	if cert == "" || key == "" {
		return errNoTLS
	}
	return nil
}
