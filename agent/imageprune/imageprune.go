// Package imageprune removes from the node's container runtime the images
// the node pulled only for installs the hub has since revoked (the agent's
// --remove-revoked-images mode).
//
// Without it a revoked customer's images stay in the node's image store: a
// container restart, or another pod with imagePullPolicy IfNotPresent, runs
// them without asking anyone for credentials. The agent knows which install
// each credential it handed out was for, so it records (repository →
// installs) and, when the hub revokes installs (a push, or a resync that no
// longer lists them), removes through CRI RemoveImage every image whose
// repositories were served only for revoked installs. An image that any
// live install was served for stays.
package imageprune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Image is an image in the runtime's store: its id and every name it has
// (CRI RepoTags and RepoDigests).
type Image struct {
	ID   string
	Refs []string
}

// ImageService is the part of the CRI image service the pruner uses.
type ImageService interface {
	ListImages(ctx context.Context) ([]Image, error)
	RemoveImage(ctx context.Context, id string) error
}

// StateFile is the file in the agent's state dir that keeps the record
// across restarts (repositories, install ids: no secrets).
const StateFile = "served-images.json"

// DefaultRetain is how long a revoked install's record is kept: an image
// whose pull was still running at the revocation is removed by a later
// sweep (after each resync) within this time.
const DefaultRetain = time.Hour

// maxRepos bounds the record (the names tenants' pods ask for are theirs to
// choose); past it new repositories are not recorded, so their images stay.
// maxStateBytes bounds the file read back.
const (
	maxRepos      = 10000
	maxStateBytes = 8 << 20
)

// use is one install a repository was served for.
type use struct {
	Workspace string    `json:"workspace,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: live
}

// Pruner records served repositories and removes revoked ones' images.
type Pruner struct {
	svc    ImageService
	path   string
	log    *slog.Logger
	now    func() time.Time
	retain time.Duration
	kick   chan struct{}

	mu    sync.Mutex
	repos map[string]map[string]*use // repository → install id → use
	dirty bool
}

// Option configures a Pruner.
type Option func(*Pruner)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(p *Pruner) { p.log = l } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(p *Pruner) { p.now = now } }

// WithRetain replaces DefaultRetain.
func WithRetain(d time.Duration) Option { return func(p *Pruner) { p.retain = d } }

// New returns a pruner that keeps its record in stateDir (loaded now; an
// unreadable record is logged and started afresh).
func New(svc ImageService, stateDir string, opts ...Option) *Pruner {
	p := &Pruner{svc: svc, log: slog.Default(), now: time.Now, retain: DefaultRetain,
		kick: make(chan struct{}, 1), repos: map[string]map[string]*use{}}
	if stateDir != "" {
		p.path = filepath.Join(stateDir, StateFile)
	}
	for _, o := range opts {
		o(p)
	}
	if err := p.load(); err != nil {
		p.log.Warn("record of served images unreadable; starting afresh", "file", p.path, "err", err)
		p.repos = map[string]map[string]*use{}
	}
	return p
}

// repoOf is the repository of an image reference ("host/path"), "" when it
// does not parse.
func repoOf(image string) string {
	r, _, err := imageref.ParseImage(image)
	if err != nil {
		return ""
	}
	return r.String()
}

// Served records that the node was handed a credential of installID for
// image (the name the kubelet or runtime asked about).
func (p *Pruner) Served(image, installID, workspace string) {
	repo := repoOf(image)
	if repo == "" || installID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ins := p.repos[repo]
	if ins == nil {
		if len(p.repos) >= maxRepos {
			p.log.Warn("record of served images full; not recording", "repository", repo)
			return
		}
		ins = map[string]*use{}
		p.repos[repo] = ins
	}
	if u := ins[installID]; u != nil && u.RevokedAt.IsZero() && u.Workspace == workspace {
		return
	}
	ins[installID] = &use{Workspace: workspace}
	p.dirty = true
}

// Revoked applies a revocation the hub pushed to node nodeID. A revoked
// node or cluster revokes everything at once (and schedules a sweep). A
// push naming installs or workspaces may also mean an install changed
// (update, credential rotation) and stays live, so it only reports whether
// a recorded install may be affected: the caller then resyncs, and Synced
// decides from the hub's list of live installs.
func (p *Pruner) Revoked(r wire.Revocation, nodeID string) (resync bool) {
	if r.Cluster || slices.Contains(r.Nodes, nodeID) {
		p.mark(func(string, *use) bool { return true }, nil)
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ins := range p.repos {
		for id, u := range ins {
			if slices.Contains(r.Installs, id) || (u.Workspace != "" && slices.Contains(r.Workspaces, u.Workspace)) {
				return true
			}
		}
	}
	return false
}

// Synced applies a resync: installs the hub no longer lists as live are
// revoked, the ones it lists are live again (enabled after a disable). It
// schedules a sweep.
func (p *Pruner) Synced(live map[string]wire.InstallState) {
	p.mark(func(id string, _ *use) bool { _, ok := live[id]; return !ok },
		func(id string, _ *use) bool { _, ok := live[id]; return ok })
}

func (p *Pruner) mark(revoked, alive func(string, *use) bool) {
	now := p.now()
	p.mu.Lock()
	for _, ins := range p.repos {
		for id, u := range ins {
			switch {
			case u.RevokedAt.IsZero() && revoked(id, u):
				u.RevokedAt = now
				p.dirty = true
			case !u.RevokedAt.IsZero() && alive != nil && alive(id, u):
				u.RevokedAt = time.Time{}
				p.dirty = true
			}
		}
	}
	p.mu.Unlock()
	p.Kick()
}

// Kick schedules a sweep (Run does it).
func (p *Pruner) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run sweeps whenever kicked until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := p.Sweep(sctx); err != nil && ctx.Err() == nil {
			p.log.Warn("removing revoked installs' images", "err", err)
		}
		cancel()
	}
}

// Sweep removes every image whose names belong only to repositories served
// for revoked installs, and no name to a repository a live install was
// served for. It returns the removed image ids.
func (p *Pruner) Sweep(ctx context.Context) ([]string, error) {
	p.expire()
	revoked, live := p.classify()
	var removed []string
	var errs []error
	if len(revoked) > 0 {
		imgs, err := p.svc.ListImages(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the runtime's images: %w", err)
		}
		for _, img := range imgs {
			if !removable(img, revoked, live) {
				continue
			}
			if err := p.svc.RemoveImage(ctx, img.ID); err != nil {
				// In use by a running container, most likely: the next
				// sweep tries again.
				errs = append(errs, fmt.Errorf("removing image %s (%v): %w", img.ID, img.Refs, err))
				continue
			}
			removed = append(removed, img.ID)
			p.log.Info("removed the image of a revoked install from the node", "image", img.ID, "names", img.Refs)
		}
	}
	if err := p.save(); err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// classify returns the repositories served only for revoked installs and
// those served for a live one.
func (p *Pruner) classify() (revoked, live map[string]bool) {
	revoked, live = map[string]bool{}, map[string]bool{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for repo, ins := range p.repos {
		anyLive := false
		for _, u := range ins {
			if u.RevokedAt.IsZero() {
				anyLive = true
				break
			}
		}
		if anyLive {
			live[repo] = true
		} else if len(ins) > 0 {
			revoked[repo] = true
		}
	}
	return revoked, live
}

// removable: every name of the image is a repository served only for
// revoked installs. A name the record does not know (pulled without the
// agent, or another copy of the same content) or that does not parse keeps
// the image: its id is shared by all its names.
func removable(img Image, revoked, live map[string]bool) bool {
	if len(img.Refs) == 0 {
		return false
	}
	for _, ref := range img.Refs {
		repo := repoOf(ref)
		if repo == "" || live[repo] || !revoked[repo] {
			return false
		}
	}
	return true
}

// expire forgets revoked installs' records older than the retain time.
func (p *Pruner) expire() {
	cut := p.now().Add(-p.retain)
	p.mu.Lock()
	defer p.mu.Unlock()
	for repo, ins := range p.repos {
		for id, u := range ins {
			if !u.RevokedAt.IsZero() && u.RevokedAt.Before(cut) {
				delete(ins, id)
				p.dirty = true
			}
		}
		if len(ins) == 0 {
			delete(p.repos, repo)
		}
	}
}

func (p *Pruner) load() error {
	if p.path == "" {
		return nil
	}
	f, err := os.Open(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxStateBytes {
		return fmt.Errorf("%s: larger than %d bytes", p.path, maxStateBytes)
	}
	repos := map[string]map[string]*use{}
	if err := json.Unmarshal(b, &repos); err != nil {
		return err
	}
	if len(repos) > maxRepos {
		return fmt.Errorf("%s: more than %d repositories", p.path, maxRepos)
	}
	for repo, ins := range repos {
		for id, u := range ins {
			if u == nil || id == "" {
				return fmt.Errorf("%s: bad entry for %q", p.path, repo)
			}
		}
	}
	p.repos = repos
	return nil
}

// save writes the record when it changed (atomically, mode 0600).
func (p *Pruner) save() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" || !p.dirty {
		return nil
	}
	b, err := json.Marshal(p.repos)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".served-images-*")
	if err != nil {
		return fmt.Errorf("saving the record of served images: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the record of served images: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the record of served images: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		return fmt.Errorf("saving the record of served images: %w", err)
	}
	p.dirty = false
	return nil
}
