package imageprune

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pullgate/pullgate/pkg/wire"
)

// store is an image store with the CRI semantics the pruner relies on:
// images by id with their names, RemoveImage by id, an image in use cannot
// be removed. The real runtime is exercised in e2e/k8s.
type store struct {
	mu     sync.Mutex
	images []Image
	inUse  map[string]bool
}

func (s *store) ListImages(context.Context) ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.images), nil
}

func (s *store) RemoveImage(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[id] {
		return errors.New("image is in use by a container")
	}
	s.images = slices.DeleteFunc(s.images, func(i Image) bool { return i.ID == id })
	return nil
}

func (s *store) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, i := range s.images {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}

const hub = "hub.test:5080"

var digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func images() []Image {
	return []Image{
		{ID: "sha256:a", Refs: []string{hub + "/ghcr.io/acme/web:1", hub + "/ghcr.io/acme/web@sha256:" + digest}},
		{ID: "sha256:b", Refs: []string{"registry.test/team/app:v1"}},
		{ID: "sha256:shared", Refs: []string{hub + "/ghcr.io/acme/base:1", hub + "/ghcr.io/other/base:1"}},
		{ID: "sha256:public", Refs: []string{"docker.io/library/busybox:1"}},
	}
}

func TestSweep(t *testing.T) {
	type step func(p *Pruner)
	served := func(img, install, ws string) step { return func(p *Pruner) { p.Served(img, install, ws) } }
	synced := func(live ...string) step {
		return func(p *Pruner) {
			m := map[string]wire.InstallState{}
			for _, id := range live {
				m[id] = wire.InstallState{}
			}
			p.Synced(m)
		}
	}
	all := []string{"sha256:a", "sha256:b", "sha256:public", "sha256:shared"}
	without := func(ids ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(ids, s) })
	}
	// pushed checks what Revoked says about a push naming installs.
	pushed := func(r wire.Revocation, wantResync bool) step {
		return func(p *Pruner) {
			if got := p.Revoked(r, "node-1"); got != wantResync {
				panic(fmt.Sprintf("Revoked(%+v) = %v, want %v", r, got, wantResync))
			}
		}
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"nothing revoked", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"), synced("i1")}, all},
		{"install disabled: push, then the resync no longer lists it", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			pushed(wire.Revocation{Installs: []string{"i1"}}, true), synced()}, without("sha256:a")},
		{"install updated: push, still listed", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			pushed(wire.Revocation{Installs: []string{"i1"}}, true), synced("i1")}, all},
		{"digest and tag of one repository", []step{served(hub+"/ghcr.io/acme/web@sha256:"+digest, "i1", "w1"),
			synced()}, without("sha256:a")},
		{"a push for an install never served here", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			pushed(wire.Revocation{Installs: []string{"i2"}}, false)}, all},
		{"mirror form", []step{served("registry.test/team/app:v1", "i1", "w1"), synced()}, without("sha256:b")},
		{"repository still served for a live install", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			served(hub+"/ghcr.io/acme/web:2", "i2", "w2"), synced("i2")}, all},
		{"both installs revoked", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			served(hub+"/ghcr.io/acme/web:2", "i2", "w2"), synced("i2"), synced()}, without("sha256:a")},
		{"an image with a name of a live install stays", []step{served(hub+"/ghcr.io/acme/base:1", "i1", "w1"),
			served(hub+"/ghcr.io/other/base:1", "i2", "w2"), synced("i2")}, all},
		{"workspace push", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"), served("registry.test/team/app:v1", "i3", "w2"),
			pushed(wire.Revocation{Workspaces: []string{"w1"}}, true), synced("i3")}, without("sha256:a")},
		{"node revoked: everything at once", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"), served("registry.test/team/app:v1", "i3", "w2"),
			pushed(wire.Revocation{Nodes: []string{"node-1"}}, false)}, without("sha256:a", "sha256:b")},
		{"cluster deleted", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			pushed(wire.Revocation{Cluster: true}, false)}, without("sha256:a")},
		{"another node revoked", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			pushed(wire.Revocation{Nodes: []string{"node-2"}}, false)}, all},
		{"enabled again before the sweep", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			synced(), synced("i1")}, all},
		{"served again after the revocation", []step{served(hub+"/ghcr.io/acme/web:1", "i1", "w1"),
			synced(), served(hub+"/ghcr.io/acme/web:1", "i1", "w1")}, all},
		{"public image never served", []step{pushed(wire.Revocation{Cluster: true}, false)}, all},
		{"bad names are ignored", []step{served("NOT an image", "i1", "w1"), served(hub+"/ghcr.io/acme/web:1", "", "w1"),
			pushed(wire.Revocation{Cluster: true}, false)}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &store{images: images()}
			p := New(s, t.TempDir())
			for _, st := range tc.steps {
				st(p)
			}
			if _, err := p.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := s.ids(); !slices.Equal(got, tc.want) {
				t.Fatalf("images left %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSweepInUseRetried(t *testing.T) {
	s := &store{images: images(), inUse: map[string]bool{"sha256:a": true}}
	p := New(s, t.TempDir())
	p.Served(hub+"/ghcr.io/acme/web:1", "i1", "w1")
	p.Synced(nil)
	if _, err := p.Sweep(t.Context()); err == nil {
		t.Fatal("an image in use: want an error")
	}
	s.inUse = nil
	removed, err := p.Sweep(t.Context())
	if err != nil || !slices.Equal(removed, []string{"sha256:a"}) {
		t.Fatalf("second sweep removed %v, %v; want sha256:a", removed, err)
	}
}

func TestRecordSurvivesRestartAndExpires(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := &store{}
	p := New(s, dir, WithClock(clock))
	p.Served(hub+"/ghcr.io/acme/web:1", "i1", "w1")
	p.Synced(nil)
	if _, err := p.Sweep(t.Context()); err != nil { // nothing pulled yet
		t.Fatal(err)
	}
	// The pull that was running at the revocation lands; the agent restarts.
	s.images = images()
	p = New(s, dir, WithClock(clock))
	if _, err := p.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.ids(), "sha256:a") {
		t.Fatal("the record of a revoked install was lost across a restart")
	}
	// After the retain time the record is gone: the image is left alone.
	s.images = images()
	now = now.Add(DefaultRetain + time.Minute)
	if _, err := p.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	p = New(s, dir, WithClock(clock))
	if _, err := p.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.ids(), "sha256:a") {
		t.Fatal("record kept past the retain time")
	}
}

// An image whose content another name also carries (a tenant pushing a copy
// of a public or another tenant's image: the runtime stores one image with
// both names) must stay when only the revoked install's name is recorded:
// the other name was pulled without this install's credentials.
func TestSweepKeepsImageWithUnrecordedName(t *testing.T) {
	s := &store{images: []Image{
		{ID: "sha256:dup", Refs: []string{hub + "/ghcr.io/evil/nginx:1", "docker.io/library/nginx:1"}},
		{ID: "sha256:odd", Refs: []string{hub + "/ghcr.io/evil/app:1", "not a valid ref!"}},
		{ID: "sha256:own", Refs: []string{hub + "/ghcr.io/evil/app:2"}},
	}}
	p := New(s, t.TempDir())
	p.Served(hub+"/ghcr.io/evil/nginx:1", "i-evil", "ws-evil")
	p.Served(hub+"/ghcr.io/evil/app:1", "i-evil", "ws-evil")
	p.Synced(map[string]wire.InstallState{})
	if _, err := p.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ids(), []string{"sha256:dup", "sha256:odd"}; !slices.Equal(got, want) {
		t.Fatalf("images left %v, want %v", got, want)
	}
}

// The record is bounded: a tenant's pods asking for ever new repository
// names cannot grow it (and served-images.json) without limit, and an
// oversized file is not loaded.
func TestRecordBounded(t *testing.T) {
	dir := t.TempDir()
	p := New(&store{}, dir)
	for i := range maxRepos + 100 {
		p.Served(fmt.Sprintf("%s/ghcr.io/evil/r%d:1", hub, i), "i-evil", "ws-evil")
	}
	p.mu.Lock()
	n := len(p.repos)
	p.mu.Unlock()
	if n > maxRepos {
		t.Fatalf("%d repositories recorded, want at most %d", n, maxRepos)
	}
	big := make([]byte, maxStateBytes+1)
	for i := range big {
		big[i] = ' '
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := New(&store{}, dir).load(); err == nil {
		t.Fatal("an oversized record loaded")
	}
}

// A corrupted record with a null entry is not loaded (a sweep would
// dereference it).
func TestRecordNullEntry(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"hub.test:5080/x/y":{"i-1":null}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := New(&store{images: []Image{{ID: "sha256:x", Refs: []string{hub + "/x/y:1"}}}}, dir)
	p.Synced(map[string]wire.InstallState{})
	if _, err := p.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}
