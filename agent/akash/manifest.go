package akash

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

// ManifestGVR is the Akash provider's Manifest custom resource.
var ManifestGVR = schema.GroupVersionResource{Group: "akash.network", Version: "v2beta2", Resource: "manifests"}

// DefaultManifestNamespace is where the provider keeps Manifests
// (provider-services --k8s-manifest-ns).
const DefaultManifestNamespace = "lease"

// Manifest is what the importer reads of a Manifest CR.
type Manifest struct {
	// Name is the CR's name: the provider names it after the lease
	// namespace.
	Name     string
	Lease    pkgakash.LeaseID
	Services []Service
}

// ParseManifest reads a Manifest CR (akash.network/v2beta2): its lease id
// and each service's name, image and credentials. It checks that the CR's
// name is the namespace of its lease.
func ParseManifest(obj *unstructured.Unstructured) (Manifest, error) {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", obj.GetName(), err)
	}
	var cr struct {
		Spec struct {
			LeaseID struct {
				Owner    string          `json:"owner"`
				DSeq     json.RawMessage `json:"dseq"`
				GSeq     uint32          `json:"gseq"`
				OSeq     uint32          `json:"oseq"`
				Provider string          `json:"provider"`
			} `json:"lease_id"`
			Group struct {
				Services []struct {
					Name        string       `json:"name"`
					Image       string       `json:"image"`
					Credentials *Credentials `json:"credentials"`
				} `json:"services"`
			} `json:"group"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &cr); err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", obj.GetName(), err)
	}
	m := Manifest{Name: obj.GetName()}
	id := cr.Spec.LeaseID
	// dseq is a string in the CRD (uint64); accept a number too.
	var ds string
	if err := json.Unmarshal(id.DSeq, &ds); err != nil {
		ds = string(id.DSeq)
	}
	dseq, err := strconv.ParseUint(ds, 10, 64)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: spec.lease_id.dseq %q: want a decimal number", m.Name, ds)
	}
	m.Lease = pkgakash.LeaseID{Owner: id.Owner, DSeq: dseq, GSeq: id.GSeq, OSeq: id.OSeq, Provider: id.Provider}
	if err := m.Lease.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", m.Name, err)
	}
	if ns := m.Lease.Namespace(); ns != m.Name {
		return Manifest{}, fmt.Errorf("manifest %s is not named after its lease's namespace %s", m.Name, ns)
	}
	for i, s := range cr.Spec.Group.Services {
		if s.Name == "" || s.Image == "" {
			return Manifest{}, fmt.Errorf("manifest %s: spec.group.services[%d]: want a name and an image", m.Name, i)
		}
		m.Services = append(m.Services, Service{Name: s.Name, Images: []string{s.Image}, Credentials: s.Credentials})
	}
	return m, nil
}

// WithCredentials returns the services that carry registry credentials.
func (m Manifest) WithCredentials() []Service {
	var out []Service
	for _, s := range m.Services {
		if s.Credentials != nil && s.Credentials.Host != "" && s.Credentials.Password != "" {
			out = append(out, s)
		}
	}
	return out
}

// CredentialImporter is what the importer needs of the hub.
type CredentialImporter interface {
	ImportCredentials(ctx context.Context, namespace string, services []Service) (ImportResult, error)
}

// BoundLeases tells whether the hub was told about a lease namespace.
type BoundLeases interface {
	Bound(namespace string) (pkgakash.LeaseID, bool)
}

// Importer watches Manifest CRs and imports the credentials tenants put in
// their SDL into the lease owner's workspace on the hub, keeping the hub's
// image map for the webhook (opt-in: --import-credentials). It only reads
// Manifests in one namespace.
type Importer struct {
	hub    CredentialImporter
	leases BoundLeases
	maps   *ImageMaps
	log    *slog.Logger

	informer  cache.SharedIndexInformer
	namespace string
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]

	mu   sync.Mutex
	sent map[string][32]byte // namespace → digest of what the hub last took
}

// NewImporter watches Manifests in namespace through dc.
func NewImporter(dc dynamic.Interface, namespace string, hub CredentialImporter, leases BoundLeases, maps *ImageMaps, log *slog.Logger) *Importer {
	if log == nil {
		log = slog.Default()
	}
	im := &Importer{hub: hub, leases: leases, maps: maps, log: log, sent: map[string][32]byte{}, namespace: namespace}
	im.informer = newInformer(dc, ManifestGVR, namespace, "")
	im.synced = im.informer.HasSynced
	im.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "akash-manifests"})
	_, _ = im.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    im.enqueue,
		UpdateFunc: func(_, cur any) { im.enqueue(cur) },
		DeleteFunc: im.enqueue,
	})
	return im
}

func (im *Importer) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	_, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return
	}
	im.queue.Add(name)
}

// Requeue looks at a lease namespace's Manifest again (its lease was just
// bound).
func (im *Importer) Requeue(namespace string) { im.queue.Add(namespace) }

// Synced reports whether the Manifest cache has synced.
func (im *Importer) Synced() bool { return im.synced() }

// Forget drops what is known of a lease namespace (it went away).
func (im *Importer) Forget(namespace string) {
	im.mu.Lock()
	delete(im.sent, namespace)
	im.mu.Unlock()
	im.maps.Delete(namespace)
}

// Run watches until ctx ends.
func (im *Importer) Run(ctx context.Context) error {
	defer im.queue.ShutDown()
	go im.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), im.synced) {
		return fmt.Errorf("akash: manifest cache did not sync: %w", context.Cause(ctx))
	}
	go func() {
		<-ctx.Done()
		im.queue.ShutDown()
	}()
	for {
		name, quit := im.queue.Get()
		if quit {
			return nil
		}
		err := im.sync(ctx, name)
		switch {
		case err == nil:
			im.queue.Forget(name)
		case ctx.Err() == nil:
			im.log.Warn("akash: credentials import failed, retrying", "namespace", name, "err", err)
			im.queue.AddRateLimited(name)
		}
		im.queue.Done(name)
	}
}

// errNotBound waits for the controller to bind the lease first.
var errNotBound = fmt.Errorf("lease namespace not bound yet")

func (im *Importer) sync(ctx context.Context, name string) error {
	obj, exists, err := im.informer.GetStore().GetByKey(im.namespace + "/" + name)
	if err != nil {
		return fmt.Errorf("manifest %s from the cache: %w", name, err)
	}
	if !exists {
		im.Forget(name)
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	m, err := ParseManifest(u)
	if err != nil {
		// A Manifest we cannot read is not retried: it changes only
		// with an update, which queues it again.
		im.log.Warn("akash: skipping manifest", "err", err)
		im.Forget(name)
		return nil
	}
	services := m.WithCredentials()
	if len(services) == 0 {
		im.Forget(name)
		return nil
	}
	if l, ok := im.leases.Bound(m.Name); !ok || l != m.Lease {
		return fmt.Errorf("%s: %w", m.Name, errNotBound)
	}
	body, _ := json.Marshal(services)
	digest := sha256.Sum256(body)
	im.mu.Lock()
	last, seen := im.sent[m.Name]
	im.mu.Unlock()
	if seen && last == digest && im.maps.Has(m.Name) {
		return nil
	}
	res, err := im.hub.ImportCredentials(ctx, m.Name, services)
	if err != nil {
		return err
	}
	im.mu.Lock()
	im.sent[m.Name] = digest
	im.mu.Unlock()
	im.maps.Set(m.Name, res.Images)
	im.log.Info("akash: credentials imported", "namespace", m.Name, "workspace", res.Workspace, "images", len(res.Images))
	return nil
}
