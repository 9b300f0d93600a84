package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pullgate/pullgate/internal/atomicfile"
)

// Local stores entries as files: <dir>/blobs/<origin>/<algorithm>/<2
// hex>/<hex>, where <origin> is 16 hex digits of the sha256 of the
// entry's origin, with a small <hex>.meta (origin and media type) next to
// it. Entries are written
// under <dir>/tmp and renamed into place only after they are complete and
// synced, so a crash leaves at most a stray temp file, which NewLocal
// removes.
type Local struct {
	dir string
}

// NewLocal opens (creating) a local store in dir and removes half-written
// entries left by a previous run.
func NewLocal(dir string) (*Local, error) {
	for _, d := range []string{dir, filepath.Join(dir, "blobs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache dir: %w", err)
		}
	}
	tmp := filepath.Join(dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return nil, fmt.Errorf("cache dir: remove half-written entry: %w", err)
		}
	}
	return &Local{dir: dir}, nil
}

// path is where a committed entry lives. The digest is parsed again
// here: it becomes a file name; the origin only through its hash.
func (l *Local) path(k Key) (string, error) {
	h, err := v1.NewHash(k.Digest)
	if err != nil {
		return "", fmt.Errorf("cache: bad digest %q: %w", k.Digest, err)
	}
	if len(h.Hex) < 2 || strings.ContainsAny(h.Algorithm+h.Hex, `/\.`) {
		return "", fmt.Errorf("cache: bad digest %q", k.Digest)
	}
	return filepath.Join(l.dir, "blobs", originDir(k.Origin), h.Algorithm, h.Hex[:2], h.Hex), nil
}

func originDir(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(sum[:8])
}

type meta struct {
	Origin    string `json:"origin"`
	MediaType string `json:"mediaType,omitempty"`
}

// Open opens a committed entry. The Blob is an *os.File underneath
// (LocalBlob.File), so a hit can be sent with sendfile.
func (l *Local) Open(_ context.Context, k Key) (Blob, error) {
	p, err := l.path(k)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", k.Digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: stat %s: %w", k.Digest, err)
	}
	info := Info{Origin: k.Origin, Digest: k.Digest, Size: st.Size(), Modified: st.ModTime()}
	if b, err := os.ReadFile(p + ".meta"); err == nil {
		var m meta
		if json.Unmarshal(b, &m) == nil {
			info.MediaType = m.MediaType
		}
	}
	return &LocalBlob{File: f, info: info}, nil
}

// LocalBlob is a committed entry of Local.
type LocalBlob struct {
	*os.File
	info Info
}

// Info describes the entry.
func (b *LocalBlob) Info() Info { return b.info }

// OSFile returns the file, for http.ServeContent's zero-copy path.
func (b *LocalBlob) OSFile() *os.File { return b.File }

// Create starts an entry in <dir>/tmp.
func (l *Local) Create(_ context.Context, k Key) (Writer, error) {
	p, err := l.path(k)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(l.dir, "tmp"), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("cache: create entry: %w", err)
	}
	return &localWriter{f: f, final: p, origin: k.Origin}, nil
}

type localWriter struct {
	f      *os.File
	final  string
	origin string
}

func (w *localWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *localWriter) NewReader() (ReaderAtCloser, error) {
	// A second descriptor: it keeps reading the same inode after the
	// rename of Commit or the unlink of Abort.
	return os.Open(w.f.Name())
}

func (w *localWriter) Commit(mediaType string) error {
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("cache: sync entry: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("cache: close entry: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(w.final), 0o700); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("cache: commit entry: %w", err)
	}
	// The media type first: an entry is visible once its data file is,
	// and then its meta must already be there, whole (written to a temp
	// file, synced, renamed). The directory is synced after both renames,
	// so a crash leaves either no entry or a complete one; Walk deletes
	// data whose meta is missing or broken.
	b, _ := json.Marshal(meta{Origin: w.origin, MediaType: mediaType})
	if err := atomicfile.Write(w.final+".meta", bytes.NewReader(b), 0o600, atomicfile.TempDir(filepath.Dir(w.f.Name()))); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("cache: commit entry: %w", err)
	}
	if err := os.Rename(w.f.Name(), w.final); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("cache: commit entry: %w", err)
	}
	if err := syncDir(filepath.Dir(w.final)); err != nil {
		return fmt.Errorf("cache: commit entry: %w", err)
	}
	return nil
}

// syncDir makes the renames into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (w *localWriter) Abort() error {
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: abort entry: %w", err)
	}
	return nil
}

// Delete removes a committed entry.
func (l *Local) Delete(_ context.Context, k Key) error {
	p, err := l.path(k)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: delete %s: %w", k.Digest, err)
	}
	os.Remove(p + ".meta")
	return nil
}

// Walk lists committed entries. Stray meta files without data are
// removed, and so is data without a valid meta file naming its origin
// (a crash between writing one and the other): it is no entry.
func (l *Local) Walk(ctx context.Context, fn func(Info) error) error {
	root := filepath.Join(l.dir, "blobs")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 4 {
			return nil
		}
		if hexName, ok := strings.CutSuffix(parts[3], ".meta"); ok {
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), hexName)); errors.Is(err, fs.ErrNotExist) {
				os.Remove(p)
			}
			return nil
		}
		b, err := os.ReadFile(p + ".meta")
		var m meta
		if err != nil || json.Unmarshal(b, &m) != nil || m.Origin == "" {
			os.Remove(p)
			os.Remove(p + ".meta")
			return nil
		}
		k := Key{Origin: m.Origin, Digest: parts[1] + ":" + parts[3]}
		if want, err := l.path(k); err != nil || want != p {
			os.Remove(p)
			os.Remove(p + ".meta")
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(Info{Origin: k.Origin, Digest: k.Digest, Size: st.Size(), MediaType: m.MediaType, Modified: st.ModTime()})
	})
}
