// Package cache is the hub's content-addressed pull-through cache: blobs
// and manifests stored under their digest, filled once from the upstream
// while the first clients read along, verified before they are committed,
// and evicted least-recently-used under a size cap.
//
// The cache knows nothing about tenants. Who may read an entry is decided
// by the proxy (package proxy), which serves an entry to an install only
// after the upstream confirmed, with that install's own credential, that
// the repository has the digest (see Confirmations).
package cache

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Storage.Open for a digest with no committed
// entry.
var ErrNotFound = errors.New("cache: no such entry")

// Key names an entry: its digest, and the upstream it was fetched from.
// Entries are shared only among requests to the same upstream: an
// upstream a tenant controls could otherwise answer "yes, I have that
// digest" to read another tenant's cached content by digest.
type Key struct {
	Origin string
	Digest string
}

// Info describes a committed entry.
type Info struct {
	Origin    string    `json:"origin"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"mediaType,omitempty"`
	Modified  time.Time `json:"modified"`
}

// Key is the entry's key.
func (i Info) Key() Key { return Key{Origin: i.Origin, Digest: i.Digest} }

// Storage holds committed entries by digest. The local filesystem (Local)
// is the embedded default; an object store shared by several hub replicas
// can implement it too: nothing outside this interface assumes files.
type Storage interface {
	// Open returns a committed entry, or ErrNotFound.
	Open(ctx context.Context, k Key) (Blob, error)
	// Create starts a new entry for k. Nothing is visible under k until
	// Commit; an entry that is never committed (Abort, a crash) is never
	// returned by Open.
	Create(ctx context.Context, k Key) (Writer, error)
	// Delete removes a committed entry; readers that have it open keep
	// reading what they opened.
	Delete(ctx context.Context, k Key) error
	// Walk calls fn for every committed entry.
	Walk(ctx context.Context, fn func(Info) error) error
}

// Blob is an open committed entry.
type Blob interface {
	io.ReadSeekCloser
	Info() Info
}

// Writer is an entry being written. ReaderAt reads what has been written
// so far, so that readers can follow a fill before it is committed.
type Writer interface {
	io.Writer
	// NewReader opens an independent reader of the bytes written so far
	// (and later ones): it stays valid after Commit or Abort until closed.
	NewReader() (ReaderAtCloser, error)
	// Commit makes the entry visible under its digest with this media
	// type. The caller has verified the digest.
	Commit(mediaType string) error
	// Abort discards the entry.
	Abort() error
}

// ReaderAtCloser reads a growing entry at offsets.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}
