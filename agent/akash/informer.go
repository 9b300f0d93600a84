package akash

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// newInformer is a shared informer on one resource through the dynamic
// client (namespace "" for all or a cluster-scoped resource; selector ""
// for every object). client-go's informer factories (typed and
// dynamicinformer) link the types of every API group into the binary: this
// keeps pullgate-agent small.
func newInformer(dc dynamic.Interface, gvr schema.GroupVersionResource, namespace, selector string) cache.SharedIndexInformer {
	var r dynamic.ResourceInterface = dc.Resource(gvr)
	if namespace != "" {
		r = dc.Resource(gvr).Namespace(namespace)
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return r.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return r.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
}
