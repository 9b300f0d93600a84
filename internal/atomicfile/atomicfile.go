// Package atomicfile replaces a file so that readers see the old content or
// the new, never a part: a temporary file in the same directory, fsync,
// rename, fsync of the directory (so the rename survives a crash too).
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Option adjusts Write.
type Option func(*options)

type options struct {
	tempPattern string
	tempDir     string
}

// TempPattern names the temporary file (os.CreateTemp's pattern), for a
// caller that sweeps its leftovers; the default is ".<name>.tmp-*".
func TempPattern(p string) Option { return func(o *options) { o.tempPattern = p } }

// TempDir writes the temporary file in dir instead of path's directory:
// for a caller whose leftovers are swept from a directory of their own
// (dir must be on the same file system as path).
func TempDir(dir string) Option { return func(o *options) { o.tempDir = dir } }

// Write replaces path with what r gives, with the given permissions. On
// error path is unchanged and no temporary file is left.
func Write(path string, r io.Reader, mode os.FileMode, opts ...Option) error {
	dir := filepath.Dir(path)
	o := options{tempPattern: "." + filepath.Base(path) + ".tmp-*"}
	for _, opt := range opts {
		opt(&o)
	}
	tmpDir := dir
	if o.tempDir != "" {
		tmpDir = o.tempDir
	}
	f, err := os.CreateTemp(tmpDir, o.tempPattern)
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("set permissions: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	// Best effort: some file systems refuse fsync on a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
