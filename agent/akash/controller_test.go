package akash

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pullgate/pullgate/internal/testkube"
	"github.com/pullgate/pullgate/internal/testlog"
	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

const (
	ownerA   = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	provider = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
)

// leaseNamespace is a namespace as the provider makes it
// (cluster/kube/builder/namespace.go).
func leaseNamespace(l pkgakash.LeaseID, rv string) *corev1.Namespace {
	ns := l.Namespace()
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"akash.network":                           "true",
		"akash.network/namespace":                 ns,
		"akash.network/manifest.resource.version": rv,
		pkgakash.LabelOwner:                       l.Owner,
		pkgakash.LabelDSeq:                        itoa(l.DSeq),
		pkgakash.LabelGSeq:                        itoa(uint64(l.GSeq)),
		pkgakash.LabelOSeq:                        itoa(uint64(l.OSeq)),
		pkgakash.LabelProvider:                    l.Provider,
	}}}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func kubeClient(t *testing.T, s *testkube.APIServer) (*rest.Config, kubernetes.Interface) {
	cfg := &rest.Config{Host: s.URL, BearerToken: s.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cs
}

func waitCall(t *testing.T, h *recordingHub, what string, from int, match func(hubCall) bool) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		calls := h.Calls()
		for i := from; i < len(calls); i++ {
			if match(calls[i]) {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s; calls: %+v", what, h.Calls())
	return 0
}

func fullSetOf(c hubCall) []string {
	var in struct{ Leases []pkgakash.LeaseID }
	json.Unmarshal([]byte(c.Body), &in)
	var out []string
	for _, l := range in.Leases {
		out = append(out, l.Namespace())
	}
	slices.Sort(out)
	return out
}

const leasesPath = "/api/v1/clusters/provider-1/akash/leases"

// TestControllerAgainstAPIServer runs the controller against a real
// kube-apiserver and a peer that records the contract's hub calls.
func TestControllerAgainstAPIServer(t *testing.T) {
	api := testkube.StartAPIServer(t)
	kube, cs := kubeClient(t, api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a := pkgakash.LeaseID{Owner: ownerA, DSeq: 100, GSeq: 1, OSeq: 1, Provider: provider}
	b := pkgakash.LeaseID{Owner: provider, DSeq: 200, GSeq: 1, OSeq: 1, Provider: provider}
	c := pkgakash.LeaseID{Owner: ownerA, DSeq: 300, GSeq: 2, OSeq: 1, Provider: provider}
	create := func(ns *corev1.Namespace) {
		t.Helper()
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Before the controller starts: lease a, a namespace whose labels
	// claim lease c under another name (squatting), and an unrelated one.
	create(leaseNamespace(a, "1"))
	squat := leaseNamespace(c, "1")
	squat.Name = "not-the-lease-namespace"
	create(squat)
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}})

	// The hub refuses the first single PUT once (503): it is retried.
	var failedOnce atomic.Bool
	h := newRecordingHub(t, func(hc hubCall) int {
		if hc.Method == http.MethodPut && strings.HasSuffix(hc.Path, "/"+b.Namespace()) && failedOnce.CompareAndSwap(false, true) {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	tokFile := t.TempDir() + "/token"
	writeToken(t, tokFile, "sa-token")
	hub, err := NewHubClient(h.srv.URL, "provider-1", tokFile, WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	ctl := NewController(dynamic.NewForConfigOrDie(kube), hub, WithResync(3*time.Second), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()

	// Start: the full set, lease a only.
	i := waitCall(t, h, "full PUT at start", 0, func(hc hubCall) bool { return hc.Method == "PUT" && hc.Path == leasesPath })
	if got := fullSetOf(h.Calls()[i]); !slices.Equal(got, []string{a.Namespace()}) {
		t.Fatalf("first full set %v, want [%s]", got, a.Namespace())
	}
	if h.Calls()[i].Auth != "Bearer sa-token" {
		t.Fatalf("auth %q", h.Calls()[i].Auth)
	}
	if ctl.Skipped() == 0 || !strings.Contains(logs.String(), "not-the-lease-namespace") {
		t.Fatalf("squatting namespace not skipped (skipped=%d)", ctl.Skipped())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ctl.Ready() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !ctl.Ready() {
		t.Fatal("not ready after the first full set")
	}

	// A new lease namespace: one PUT (the 503 retried).
	mark := len(h.Calls())
	create(leaseNamespace(b, "1"))
	i = waitCall(t, h, "PUT of lease b after a 503", mark, func(hc hubCall) bool {
		return hc.Method == "PUT" && hc.Path == leasesPath+"/"+b.Namespace() && failedOnce.Load() && hc.Body != ""
	})
	var got pkgakash.LeaseID
	json.Unmarshal([]byte(h.Calls()[i].Body), &got)
	if got != b {
		t.Fatalf("PUT body %+v, want %+v", got, b)
	}
	waitCall(t, h, "retried PUT of lease b", i+1, func(hc hubCall) bool {
		return hc.Method == "PUT" && hc.Path == leasesPath+"/"+b.Namespace()
	})

	// The provider's label rewrite (same lease, new resource version): no
	// DELETE, no change. Then lease c's namespace: its PUT comes after the
	// rewrite's event, so everything before it is checked.
	mark = len(h.Calls())
	ns, err := cs.CoreV1().Namespaces().Get(ctx, a.Namespace(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = leaseNamespace(a, "2").Labels
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(leaseNamespace(c, "1"))
	i = waitCall(t, h, "PUT of lease c", mark, func(hc hubCall) bool { return hc.Path == leasesPath+"/"+c.Namespace() })
	for _, hc := range h.Calls()[mark:i] {
		if strings.HasSuffix(hc.Path, a.Namespace()) {
			t.Fatalf("label rewrite caused %s %s", hc.Method, hc.Path)
		}
	}

	// Lease c's namespace relabelled to another owner: its name no longer
	// matches its labels, so the lease is unbound, not moved.
	mark = len(h.Calls())
	nsC, err := cs.CoreV1().Namespaces().Get(ctx, c.Namespace(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsC.Labels[pkgakash.LabelOwner] = provider
	if _, err := cs.CoreV1().Namespaces().Update(ctx, nsC, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	i = waitCall(t, h, "DELETE of relabelled lease c", mark, func(hc hubCall) bool {
		return hc.Path == leasesPath+"/"+c.Namespace()
	})
	if hc := h.Calls()[i]; hc.Method != "DELETE" {
		t.Fatalf("relabelled namespace: %s %s, want DELETE", hc.Method, hc.Path)
	}

	// Deleting b's namespace (finalized by hand: no namespace controller
	// here) sends a DELETE.
	mark = len(h.Calls())
	if err := cs.CoreV1().Namespaces().Delete(ctx, b.Namespace(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	fin, err := cs.CoreV1().Namespaces().Get(ctx, b.Namespace(), metav1.GetOptions{})
	if err == nil {
		fin.Spec.Finalizers = nil
		if _, err := cs.CoreV1().Namespaces().Finalize(ctx, fin, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitCall(t, h, "DELETE of lease b", mark, func(hc hubCall) bool {
		return hc.Method == "DELETE" && hc.Path == leasesPath+"/"+b.Namespace()
	})
	if _, ok := ctl.Bound(b.Namespace()); ok {
		t.Fatal("b still bound after its DELETE")
	}

	// The periodic full set: a only (not b, c, nor the squatter).
	mark = len(h.Calls())
	i = waitCall(t, h, "periodic full PUT", mark, func(hc hubCall) bool { return hc.Method == "PUT" && hc.Path == leasesPath })
	want := []string{a.Namespace()}
	if got := fullSetOf(h.Calls()[i]); !slices.Equal(got, want) {
		t.Fatalf("resync set %v, want %v", got, want)
	}
	if strings.Contains(logs.String(), "sa-token") {
		t.Fatal("the log names the service-account token")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
