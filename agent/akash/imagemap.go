package akash

import (
	"maps"
	"sync"
)

// ImageMaps holds, per lease namespace, the hub's answer to the lease's
// credentials import: upstream image (as the SDL names it) → hub image.
// The manifest importer fills it, the webhook reads it.
type ImageMaps struct {
	mu sync.RWMutex
	m  map[string]map[string]string
}

// NewImageMaps returns an empty set.
func NewImageMaps() *ImageMaps { return &ImageMaps{m: map[string]map[string]string{}} }

// Set replaces a namespace's map (nil or empty removes it).
func (s *ImageMaps) Set(namespace string, images map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(images) == 0 {
		delete(s.m, namespace)
		return
	}
	s.m[namespace] = maps.Clone(images)
}

// Delete drops a namespace's map.
func (s *ImageMaps) Delete(namespace string) { s.Set(namespace, nil) }

// Lookup returns the hub form of an image in a namespace.
func (s *ImageMaps) Lookup(namespace, image string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[namespace][image]
	return v, ok
}

// Has reports whether a namespace has a map.
func (s *ImageMaps) Has(namespace string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m[namespace]) > 0
}
