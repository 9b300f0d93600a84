package testupstream

import (
	"archive/tar"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Ref returns the image reference "HOST/repo:tag" on this registry.
func (r *Registry) Ref(repo, tag string) string {
	return r.Host + "/" + repo + ":" + tag
}

// Auth returns the registry's own credentials, or authn.Anonymous when it
// needs none.
func (r *Registry) Auth() authn.Authenticator {
	if r.User == "" && r.Password == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.User, Password: r.Password}
}

// Keychain returns a keychain that resolves this registry's host to Auth
// and everything else to anonymous.
func (r *Registry) Keychain() authn.Keychain { return hostKeychain{r} }

type hostKeychain struct{ r *Registry }

func (k hostKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() == k.r.Host {
		return k.r.Auth(), nil
	}
	return authn.Anonymous, nil
}

// PushRandomImage pushes a random linux/amd64 image of `layers` tar layers,
// each holding one file of layerSize random bytes, as repo:tag. Each layer
// is built in memory, so keep them small.
func (r *Registry) PushRandomImage(t testing.TB, repo, tag string, layers int, layerSize int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, int64(layers))
	if err != nil {
		t.Fatalf("testupstream: generating random image: %v", err)
	}
	img = r.push(t, repo, tag, img)
	return img
}

// PushBlobImage pushes a linux/amd64 image as repo:tag whose single
// uncompressed layer is exactly size bytes, and returns the image and that
// layer's digest. The bytes are an incompressible AES-CTR keystream
// generated on the fly (several GB/s), so multi-GiB layers are streamed without being held in
// memory (the digest costs one extra pass over the stream).
//
// When size is a multiple of 512 and at least 1536 the layer is a valid tar
// archive holding a single file, so container runtimes can unpack it;
// otherwise it is raw random bytes.
func (r *Registry) PushBlobImage(t testing.TB, repo, tag string, size int64) (v1.Image, v1.Hash) {
	t.Helper()
	layer, err := newBlobLayer(size)
	if err != nil {
		t.Fatalf("testupstream: building %d-byte layer: %v", size, err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{CreatedBy: "testupstream.PushBlobImage", Created: v1.Time{Time: time.Unix(0, 0)}},
	})
	if err != nil {
		t.Fatalf("testupstream: building image: %v", err)
	}
	img = r.push(t, repo, tag, img)
	h, err := layer.Digest()
	if err != nil {
		t.Fatalf("testupstream: layer digest: %v", err)
	}
	return img, h
}

// push sets the image's platform to linux/amd64 and writes it as repo:tag.
func (r *Registry) push(t testing.TB, repo, tag string, img v1.Image) v1.Image {
	t.Helper()
	img, err := withPlatform(img, "linux", "amd64")
	if err != nil {
		t.Fatalf("testupstream: %v", err)
	}
	ref, err := name.NewTag(r.Ref(repo, tag))
	if err != nil {
		t.Fatalf("testupstream: parsing reference: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.Auth()), remote.WithContext(t.Context())); err != nil {
		t.Fatalf("testupstream: pushing %s: %v%s", ref, err, r.procLogHint())
	}
	return img
}

func withPlatform(img v1.Image, os, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting platform: %w", err)
	}
	return img, nil
}

// tarTrailer is the two zero blocks that end a tar archive.
const tarTrailer = 1024

// blobLayer is an uncompressed v1.Layer whose content is regenerated from a
// seed on every read.
type blobLayer struct {
	seed   [32]byte // AES-128 key and CTR IV
	size   int64
	header []byte // tar header, or nil for raw bytes

	once   sync.Once
	digest v1.Hash
	err    error
}

var _ v1.Layer = (*blobLayer)(nil)

func newBlobLayer(size int64) (*blobLayer, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative size %d", size)
	}
	l := &blobLayer{size: size}
	if _, err := rand.Read(l.seed[:]); err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	if size%512 == 0 && size >= 512+tarTrailer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     "blob.bin",
			Mode:     0o644,
			Size:     size - 512 - tarTrailer,
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatGNU, // one 512-byte block for any size
		})
		if err != nil {
			return nil, fmt.Errorf("writing tar header: %w", err)
		}
		if buf.Len() != 512 {
			return nil, fmt.Errorf("tar header is %d bytes, want 512", buf.Len())
		}
		l.header = buf.Bytes()
	}
	return l, nil
}

// open returns a fresh reader over the layer's exact bytes.
func (l *blobLayer) open() io.Reader {
	block, err := aes.NewCipher(l.seed[:16])
	if err != nil {
		panic(err) // unreachable: the key is always 16 bytes
	}
	rng := cipher.StreamReader{S: cipher.NewCTR(block, l.seed[16:]), R: zeroReader{}}
	if l.header == nil {
		return io.LimitReader(rng, l.size)
	}
	body := l.size - int64(len(l.header)) - tarTrailer
	return io.MultiReader(
		bytes.NewReader(l.header),
		io.LimitReader(rng, body),
		bytes.NewReader(make([]byte, tarTrailer)),
	)
}

func (l *blobLayer) Digest() (v1.Hash, error) {
	l.once.Do(func() {
		h := sha256.New()
		if _, err := io.Copy(h, l.open()); err != nil {
			l.err = fmt.Errorf("hashing layer: %w", err)
			return
		}
		l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	})
	return l.digest, l.err
}

func (l *blobLayer) DiffID() (v1.Hash, error)             { return l.Digest() }
func (l *blobLayer) Compressed() (io.ReadCloser, error)   { return io.NopCloser(l.open()), nil }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return io.NopCloser(l.open()), nil }
func (l *blobLayer) Size() (int64, error)                 { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

// zeroReader reads endless zeros; XORed with a keystream it yields the
// keystream itself.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
