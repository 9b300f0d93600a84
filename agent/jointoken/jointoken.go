// Package jointoken gives the agent its cluster join token: a fixed value
// (flag or environment) or a file that is watched for changes. The file
// may be a Kubernetes Secret volume, where the kubelet replaces the
// contents by swapping the "..data" symlink; the containing directory is
// watched, so that swap (and an editor's rename) is seen, and the file is
// re-read whenever anything in the directory changes.
//
// Nothing here logs or formats the token itself.
package jointoken

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// MaxSize bounds a join token file.
const MaxSize = 4 << 10

// Source yields the current join token.
type Source interface {
	// Token returns the join token, trimmed of surrounding space.
	Token() (string, error)
	// Changed receives a value (coalesced) whenever the token may have
	// changed. A fixed token never changes.
	Changed() <-chan struct{}
}

type static struct{ tok string }

// Static is a fixed token (from a flag or the environment).
func Static(tok string) Source { return static{strings.TrimSpace(tok)} }

func (s static) Token() (string, error) {
	if s.tok == "" {
		return "", errors.New("join token is empty")
	}
	return s.tok, nil
}

func (static) Changed() <-chan struct{} { return nil }

// File is a join token file watched for changes.
type File struct {
	path    string
	log     *slog.Logger
	poll    time.Duration
	changed chan struct{}

	mu   sync.Mutex
	last [sha256.Size]byte
}

// Option configures WatchFile.
type Option func(*File)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(f *File) { f.log = l } }

// WithPollInterval also re-reads the file this often, in case a change
// notification was missed (default one minute; 0 disables).
func WithPollInterval(d time.Duration) Option { return func(f *File) { f.poll = d } }

// WatchFile watches the directory holding path until ctx ends. The file
// itself need not exist yet; its directory must.
func WatchFile(ctx context.Context, path string, opts ...Option) (*File, error) {
	f := &File{path: path, log: slog.Default(), poll: time.Minute, changed: make(chan struct{}, 1)}
	for _, o := range opts {
		o(f)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch join token file: %w", err)
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch join token directory %s: %w", dir, err)
	}
	if data, err := f.read(); err == nil {
		f.last = sha256.Sum256(data)
	}
	go f.loop(ctx, w)
	return f, nil
}

// Token reads the file.
func (f *File) Token() (string, error) {
	data, err := f.read()
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("join token file %s is empty", f.path)
	}
	return tok, nil
}

// Changed is signalled when the file's contents changed.
func (f *File) Changed() <-chan struct{} { return f.changed }

func (f *File) read() ([]byte, error) {
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("join token file %s does not exist (yet)", f.path)
	}
	if err != nil {
		return nil, fmt.Errorf("read join token file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read join token file %s: %w", f.path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("join token file %s is larger than %d bytes", f.path, MaxSize)
	}
	return bytes.TrimSpace(data), nil
}

func (f *File) loop(ctx context.Context, w *fsnotify.Watcher) {
	defer w.Close()
	var tick <-chan time.Time
	if f.poll > 0 {
		t := time.NewTicker(f.poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			f.log.Debug("join token directory changed", "event", ev.Op.String(), "name", filepath.Base(ev.Name))
			f.check()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			f.log.Warn("watching join token file", "path", f.path, "err", err)
			f.check()
		case <-tick:
			f.check()
		}
	}
}

// check re-reads the file and signals when its contents changed.
func (f *File) check() {
	data, err := f.read()
	if err != nil {
		return // removed mid-swap; the next event brings the new file
	}
	sum := sha256.Sum256(data)
	f.mu.Lock()
	changed := sum != f.last
	f.last = sum
	f.mu.Unlock()
	if changed {
		f.log.Info("join token file changed; it will be used for the next enrolment attempt", "path", f.path)
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
}
