package cache_test

import (
	"testing"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/cache/storagetest"
)

// localBacking is a cache directory.
type localBacking struct{ dir string }

func (b localBacking) Open(t *testing.T) cache.Storage {
	t.Helper()
	s, err := cache.NewLocal(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLocalConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Backing { return localBacking{dir: t.TempDir()} }, storagetest.Options{})
}
