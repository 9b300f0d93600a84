package akash

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/pullgate/pullgate/internal/testkube"
	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

// noLeases binds nothing: the importer only caches Manifests.
type noLeases struct{}

func (noLeases) Bound(string) (pkgakash.LeaseID, bool) { return pkgakash.LeaseID{}, false }

// TestImporterCachesTrimmedManifests: the importer's cache, filled by a
// real API server, holds Manifests trimmed by trimManifest (a tenant sizes
// its Manifest; TestTrimManifest checks the trim, this that it is wired).
func TestImporterCachesTrimmedManifests(t *testing.T) {
	api := testkube.StartAPIServer(t)
	kube, cs := kubeClient(t, api)
	dc, err := dynamic.NewForConfig(kube)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	installManifestCRD(ctx, t, dc)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lease"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var mani unstructured.Unstructured
	mani.Object = readJSON(t, "testdata/manifest.json").Object
	mani.SetAnnotations(map[string]string{"bulk": strings.Repeat("x", 200<<10)})
	if _, err := dc.Resource(ManifestGVR).Namespace("lease").Create(ctx, &mani, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	im := NewImporter(dc, "lease", nil, noLeases{}, NewImageMaps(), nil)
	go func() { _ = im.Run(ctx) }()
	waitUntil(t, "manifest cache synced", im.Synced)
	obj, ok, err := im.informer.GetStore().GetByKey("lease/" + mani.GetName())
	if err != nil || !ok {
		t.Fatalf("manifest %s not in the importer's cache: %v", mani.GetName(), err)
	}
	u := obj.(*unstructured.Unstructured)
	if len(u.GetAnnotations()) > 0 || len(u.GetManagedFields()) > 0 {
		t.Fatalf("the importer's cache holds the whole Manifest (annotations %d bytes, %d managed fields), not the trimmed one",
			len(u.GetAnnotations()["bulk"]), len(u.GetManagedFields()))
	}
	if _, err := ParseManifest(u); err != nil {
		t.Fatalf("the cached manifest does not parse: %v", err)
	}
}
