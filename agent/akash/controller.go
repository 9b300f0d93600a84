// Package akash is the provider-side binding controller for Akash leases
// (pullgate-agent akash): it reports the cluster's lease namespaces to the
// hub, and, opt-in, imports the credentials tenants put in their SDL and
// points their pods at the hub with a mutating admission webhook.
package akash

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

// DefaultResync is how often the whole set of leases is sent to the hub.
const DefaultResync = 5 * time.Minute

// LeaseHub is what the controller needs of the hub.
type LeaseHub interface {
	PutLeases(ctx context.Context, leases []pkgakash.LeaseID) (int, error)
	PutLease(ctx context.Context, l pkgakash.LeaseID) error
	DeleteLease(ctx context.Context, namespace string) error
}

// Controller watches the cluster's lease namespaces (label
// akash.network/lease.id.owner) and keeps the hub's set of leases for this
// cluster equal to them. It only reads Namespaces: it never writes to the
// Kubernetes API and never reads Secrets.
type Controller struct {
	hub    LeaseHub
	log    *slog.Logger
	resync time.Duration

	informer cache.SharedIndexInformer
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	// mu serialises hub calls, so a full PUT and a single change never
	// cross; bound is what the hub was last told.
	mu    sync.Mutex
	bound map[string]pkgakash.LeaseID

	onBind, onUnbind func(namespace string)

	ready   atomic.Bool
	skipped atomic.Uint64
	failed  atomic.Uint64
}

// ControllerOption configures a Controller.
type ControllerOption func(*Controller)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ControllerOption { return func(c *Controller) { c.log = l } }

// WithResync sets how often the full set is sent to the hub.
func WithResync(d time.Duration) ControllerOption { return func(c *Controller) { c.resync = d } }

// WithOnUnbind is called with a namespace the hub was told is gone.
func WithOnUnbind(f func(namespace string)) ControllerOption {
	return func(c *Controller) { c.onUnbind = f }
}

// WithOnBind is called with a namespace the hub was told about.
func WithOnBind(f func(namespace string)) ControllerOption {
	return func(c *Controller) { c.onBind = f }
}

// namespacesGVR: the controller reads Namespaces through the dynamic client
// (metadata only matters), which keeps client-go's typed clients and their
// scheme of every API group out of the agent binary.
var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// nsMeta is the part of a Namespace the controller reads.
type nsMeta interface {
	GetName() string
	GetLabels() map[string]string
}

// NewController watches namespaces through dc.
func NewController(dc dynamic.Interface, hub LeaseHub, opts ...ControllerOption) *Controller {
	c := &Controller{hub: hub, log: slog.Default(), resync: DefaultResync, bound: map[string]pkgakash.LeaseID{}}
	for _, o := range opts {
		o(c)
	}
	// Informer resync off: the controller's own resync sends the whole
	// set, which also covers deletions a relist would miss.
	c.informer = newInformer(dc, namespacesGVR, "", pkgakash.LabelOwner)
	c.synced = c.informer.HasSynced
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 2*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "akash-leases"})
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			// The provider rewrites its labels on every reconcile (a new
			// manifest.resource.version): only a change of the lease
			// labels matters.
			o, ok1 := old.(nsMeta)
			n, ok2 := cur.(nsMeta)
			if ok1 && ok2 && sameLeaseLabels(o.GetLabels(), n.GetLabels()) {
				return
			}
			c.enqueue(cur)
		},
		DeleteFunc: c.enqueue, // tombstones included: the key is all we need
	})
	return c
}

var leaseLabels = []string{pkgakash.LabelOwner, pkgakash.LabelDSeq, pkgakash.LabelGSeq, pkgakash.LabelOSeq, pkgakash.LabelProvider}

func sameLeaseLabels(a, b map[string]string) bool {
	for _, k := range leaseLabels {
		va, oka := a[k]
		vb, okb := b[k]
		if va != vb || oka != okb {
			return false
		}
	}
	return true
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Warn("akash: namespace event without a name", "err", err)
		return
	}
	c.queue.Add(key)
}

// Ready reports whether the namespace cache has synced and the first full
// set reached the hub.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Skipped counts namespaces whose labels do not describe the lease their
// name encodes.
func (c *Controller) Skipped() uint64 { return c.skipped.Load() }

// Failed counts hub calls that failed (each is retried).
func (c *Controller) Failed() uint64 { return c.failed.Load() }

// Bound reports the lease of a namespace the hub was told about.
func (c *Controller) Bound(namespace string) (pkgakash.LeaseID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.bound[namespace]
	return l, ok
}

// Run watches until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	go c.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("akash: namespace cache did not sync: %w", context.Cause(ctx))
	}
	c.log.Info("akash: namespace cache synced")
	go func() {
		for c.work(ctx) {
		}
	}()
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	// The full set at start (retried until it lands), then every resync.
	pause := time.Second
	for {
		err := c.FullSync(ctx)
		next := c.resync
		if err != nil {
			c.log.Warn("akash: full lease sync failed, retrying", "err", err, "in", pause)
			next, pause = pause, min(pause*2, c.resync)
		} else {
			c.ready.Store(true)
			pause = time.Second
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// FullSync sends the whole set of lease namespaces in the cache.
func (c *Controller) FullSync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nss := c.informer.GetStore().List()
	set := map[string]pkgakash.LeaseID{}
	for _, obj := range nss {
		ns, ok := obj.(nsMeta)
		if !ok {
			continue
		}
		if l, ok := c.parse(ns); ok {
			set[ns.GetName()] = l
		}
	}
	leases := slices.SortedFunc(maps.Values(set), func(a, b pkgakash.LeaseID) int {
		return strings.Compare(a.Namespace(), b.Namespace())
	})
	n, err := c.hub.PutLeases(ctx, leases)
	if err != nil {
		c.failed.Add(1)
		return err
	}
	for ns := range c.bound {
		if _, ok := set[ns]; !ok && c.onUnbind != nil {
			c.onUnbind(ns)
		}
	}
	for ns := range set {
		if _, ok := c.bound[ns]; !ok && c.onBind != nil {
			c.onBind(ns)
		}
	}
	c.bound = set
	c.log.Info("akash: full lease set sent to the hub", "leases", len(leases), "hub_leases", n)
	return nil
}

func (c *Controller) parse(ns nsMeta) (pkgakash.LeaseID, bool) {
	l, err := pkgakash.LeaseFromLabels(ns.GetName(), ns.GetLabels())
	if err != nil {
		c.skipped.Add(1)
		c.log.Warn("akash: skipping namespace: its labels do not describe its lease", "namespace", ns.GetName(), "err", err)
		return pkgakash.LeaseID{}, false
	}
	return l, true
}

func (c *Controller) work(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		c.failed.Add(1)
		if ctx.Err() == nil {
			c.log.Warn("akash: lease update failed, retrying", "namespace", key, "err", err)
			c.queue.AddRateLimited(key)
		}
		return true
	}
	c.queue.Forget(key)
	return true
}

// sync tells the hub the state of one namespace: its lease, or that it is
// gone (deleted, or its labels no longer describe a lease).
func (c *Controller) sync(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, exists, err := c.informer.GetStore().GetByKey(name)
	if err != nil {
		return fmt.Errorf("namespace %s from the cache: %w", name, err)
	}
	ns, isNS := obj.(nsMeta)
	switch {
	case exists && !isNS:
		return fmt.Errorf("namespace %s from the cache: unexpected %T", name, obj)
	case exists:
		if l, ok := c.parse(ns); ok {
			if err := c.hub.PutLease(ctx, l); err != nil {
				return err
			}
			c.bound[name] = l
			if c.onBind != nil {
				c.onBind(name)
			}
			c.log.Info("akash: lease bound", "namespace", name, "lease", l.String())
			return nil
		}
		if _, was := c.bound[name]; !was {
			return nil
		}
	}
	if err := c.hub.DeleteLease(ctx, name); err != nil {
		return err
	}
	delete(c.bound, name)
	if c.onUnbind != nil {
		c.onUnbind(name)
	}
	c.log.Info("akash: lease unbound", "namespace", name)
	return nil
}
