package cache

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// S3API is the part of the S3 client that S3 uses (*s3.Client has it).
type S3API interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// S3 defaults.
const (
	// DefaultS3PartSize is the part size of multipart uploads; entries up
	// to it are uploaded with one PUT.
	DefaultS3PartSize = 64 << 20
	// DefaultS3RetryAfter is how long the store is left alone after it
	// failed to answer: requests meanwhile go to the upstream uncached
	// at once instead of each waiting for a timeout.
	DefaultS3RetryAfter = 5 * time.Second
)

// s3UploadParallel is how many parts of one multipart upload are sent
// at once.
const s3UploadParallel = 4

// ErrUnavailable means the storage did not answer (an object store that
// is unreachable or failing). The cache then streams from the upstream
// uncached.
var ErrUnavailable = errors.New("cache: storage unavailable")

// S3Config configures an S3 storage.
type S3Config struct {
	Client S3API
	Bucket string
	// Prefix is put before every key ("" or ending in "/"): several
	// installations can share a bucket under different prefixes.
	Prefix string
	// StagingDir holds fills being written, on local disk: this replica's
	// own, never shared (NewS3 empties it).
	StagingDir string
	// PartSize: multipart uploads above it (0: DefaultS3PartSize; at
	// least 5 MiB, S3's minimum part).
	PartSize int64
	// RetryAfter: see DefaultS3RetryAfter (0: that).
	RetryAfter time.Duration
	Logger     *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// S3 stores entries as objects of an S3-compatible object store, which
// several hub replicas can share:
//
//	<prefix>blobs/<origin, base64url>/<algorithm>/<hex>
//
// with the origin and media type in the object's user metadata. A fill
// is written to a local staging file (its readers follow that file as it
// grows) and uploaded on Commit, after the cache verified its digest, in
// one PUT or a multipart upload: S3 makes an object visible only once
// the PUT or CompleteMultipartUpload succeeded, so a crash or a failed
// upload never leaves a half-written entry to be served. Parts of an
// upload that a crash interrupted stay invisible; a bucket lifecycle
// rule (AbortIncompleteMultipartUpload) removes them.
//
// An object store that does not answer makes every call fail with
// ErrUnavailable for RetryAfter, then one call tries again (the others
// keep failing at once until it has an answer or another RetryAfter
// passed): pulls
// go to the upstream meanwhile, and the cache is used again as soon as
// the store answers, without a restart.
type S3 struct {
	client   S3API
	bucket   string
	prefix   string
	staging  string
	partSize int64
	retry    time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu        sync.Mutex
	downUntil time.Time
	down      bool
	errors    atomic.Int64
}

// NewS3 opens an S3 storage and empties its staging directory (fills a
// previous run left half-written). It does not contact the store: see
// Check.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Client == nil {
		return nil, errors.New("cache: s3: no client")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("cache: s3: no bucket")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if strings.HasPrefix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("cache: s3: prefix %q must not start with /", cfg.Prefix)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultS3PartSize
	}
	if cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("cache: s3: part size %d below S3's minimum of 5 MiB", cfg.PartSize)
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultS3RetryAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StagingDir == "" {
		return nil, errors.New("cache: s3: no staging directory")
	}
	if err := os.MkdirAll(cfg.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: s3 staging dir: %w", err)
	}
	ents, err := os.ReadDir(cfg.StagingDir)
	if err != nil {
		return nil, fmt.Errorf("cache: s3 staging dir: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "fill-") {
			if err := os.RemoveAll(filepath.Join(cfg.StagingDir, e.Name())); err != nil {
				return nil, fmt.Errorf("cache: s3 staging dir: remove half-written entry: %w", err)
			}
		}
	}
	return &S3{client: cfg.Client, bucket: cfg.Bucket, prefix: cfg.Prefix, staging: cfg.StagingDir,
		partSize: cfg.PartSize, retry: cfg.RetryAfter, log: cfg.Logger, now: cfg.Now}, nil
}

// Shared reports that other hub replicas may add entries to the same
// bucket: the cache looks there for what its own index does not know.
func (s *S3) Shared() bool { return true }

// Prefix is the key prefix of the entries, as NewS3 normalized it (""
// or ending in /).
func (s *S3) Prefix() string { return s.prefix }

// Available reports whether the store answered its last call (or is due
// to be tried again).
func (s *S3) Available() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down
}

// Errors counts calls that failed because the store did not answer.
func (s *S3) Errors() int64 { return s.errors.Load() }

// Check asks the store for the bucket: an error that names what is wrong
// when the bucket is missing or not ours to read, ErrUnavailable
// (wrapped) when the store does not answer.
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err = s.observe(err); err != nil {
		return fmt.Errorf("cache: s3 bucket %q: %w", s.bucket, err)
	}
	return nil
}

// gate refuses calls while the store is resting after a failure. When
// the rest is over it lets one call through to probe the store and
// refuses the others for another rest (or until the probe's answer ends
// the outage): a store that hangs must not hold every concurrent request
// for its timeouts again after every rest.
func (s *S3) gate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	now := s.now()
	if now.Before(s.downUntil) {
		return ErrUnavailable
	}
	s.downUntil = now.Add(s.retry) // this call probes
	return nil
}

// observe records the outcome of a call: a store that did not answer
// (no HTTP response, or a 5xx) rests for RetryAfter; any answer ends a
// rest. It returns err, wrapped in ErrUnavailable in the first case.
func (s *S3) observe(err error) error {
	// A store that answers too slowly is as good as down; a caller that
	// went away says nothing about the store.
	unavailable := errors.Is(err, context.DeadlineExceeded) ||
		err != nil && !errors.Is(err, context.Canceled) && !answered(err)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case unavailable:
		s.errors.Add(1)
		if !s.down {
			s.log.Warn("cache object store unavailable: pulls go to the upstream uncached until it answers",
				"bucket", s.bucket, "retry_after", s.retry, "err", err)
		}
		s.down, s.downUntil = true, s.now().Add(s.retry)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case s.down && (err == nil || answered(err)):
		s.down = false
		s.log.Info("cache object store available again", "bucket", s.bucket)
	}
	return err
}

// answered reports whether err carries an HTTP answer below 500 from
// the store (not found, forbidden, ...). A request that could not be
// sent is a ResponseError too, with no status.
func answered(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 100 && re.HTTPStatusCode() < 500
}

func isNotFound(err error) bool {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 404 {
		return true
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}

// key is an entry's object key. The digest is parsed again here; the
// origin is encoded, so Walk can read it back from the key.
func (s *S3) key(k Key) (string, error) {
	h, err := v1.NewHash(k.Digest)
	if err != nil {
		return "", fmt.Errorf("cache: bad digest %q: %w", k.Digest, err)
	}
	if h.Algorithm != "sha256" || strings.ContainsAny(h.Algorithm+h.Hex, `/\.`) {
		// Only what a fill can verify is ever stored: an object under
		// another algorithm is no hub's verified entry.
		return "", fmt.Errorf("cache: bad digest %q", k.Digest)
	}
	if k.Origin == "" {
		return "", errors.New("cache: entry without origin")
	}
	return s.prefix + "blobs/" + base64.RawURLEncoding.EncodeToString([]byte(k.Origin)) + "/" + h.Algorithm + "/" + h.Hex, nil
}

// User metadata names (x-amz-meta-*); values are URL-escaped, as HTTP
// headers carry them.
const (
	metaOrigin    = "pullgate-origin"
	metaMediaType = "pullgate-media-type"
)

func metaFor(origin, mediaType string) map[string]string {
	m := map[string]string{metaOrigin: url.QueryEscape(origin)}
	if mediaType != "" {
		m[metaMediaType] = url.QueryEscape(mediaType)
	}
	return m
}

// infoOf checks an object's metadata against k: an object without this
// origin in its metadata is no entry of k.
func infoOf(k Key, meta map[string]string, size *int64, modified *time.Time) (Info, bool) {
	origin, err := url.QueryUnescape(meta[metaOrigin])
	if err != nil || origin != k.Origin {
		return Info{}, false
	}
	if size == nil || *size < 0 {
		return Info{}, false
	}
	info := Info{Origin: k.Origin, Digest: k.Digest, MediaType: metaMediaTypeOf(meta), Size: *size}
	if modified != nil {
		info.Modified = *modified
	}
	return info, true
}

// metaMediaTypeOf is the media type in an object's metadata, or "" when
// it is no media type: whoever can write to the bucket must not choose
// arbitrary Content-Type values (line breaks, HTML) for the hub's answers.
func metaMediaTypeOf(meta map[string]string) string {
	mt, err := url.QueryUnescape(meta[metaMediaType])
	if err != nil || mt == "" || len(mt) > maxMediaTypeLen {
		return ""
	}
	for _, r := range mt {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	if _, _, err := mime.ParseMediaType(mt); err != nil {
		return ""
	}
	return mt
}

// maxMediaTypeLen bounds a media type read from object metadata.
const maxMediaTypeLen = 255

// Open fetches a committed entry. Its body is read as the client reads;
// a Seek (a Range request) reopens it at the new offset.
func (s *S3) Open(ctx context.Context, k Key) (Blob, error) {
	key, err := s.key(k)
	if err != nil {
		return nil, err
	}
	if err := s.gate(); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		s.observe(err)
		return nil, ErrNotFound
	}
	if err = s.observe(err); err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", k.Digest, err)
	}
	info, ok := infoOf(k, out.Metadata, out.ContentLength, out.LastModified)
	if !ok {
		out.Body.Close()
		return nil, ErrNotFound
	}
	return &s3Blob{s: s, ctx: ctx, key: key, info: info, body: out.Body}, nil
}

// s3Blob reads an object from off. body, when open, is at bodyOff.
type s3Blob struct {
	s       *S3
	ctx     context.Context
	key     string
	info    Info
	body    io.ReadCloser
	bodyOff int64
	off     int64
}

func (b *s3Blob) Info() Info { return b.info }

func (b *s3Blob) Read(p []byte) (int, error) {
	if b.off >= b.info.Size {
		return 0, io.EOF
	}
	if b.body != nil && b.bodyOff != b.off {
		b.body.Close()
		b.body = nil
	}
	if b.body == nil {
		if err := b.s.gate(); err != nil {
			return 0, err
		}
		out, err := b.s.client.GetObject(b.ctx, &s3.GetObjectInput{Bucket: aws.String(b.s.bucket), Key: aws.String(b.key),
			Range: aws.String(fmt.Sprintf("bytes=%d-", b.off))})
		if err = b.s.observe(err); err != nil {
			return 0, fmt.Errorf("cache: read %s at %d: %w", b.info.Digest, b.off, err)
		}
		// A store may ignore Range (and answer with the whole object), or
		// the object may have changed size: only exactly the bytes asked
		// for, of an object of the size being served, may follow.
		whole := b.off == 0 && out.ContentRange == nil && aws.ToInt64(out.ContentLength) == b.info.Size
		if want := fmt.Sprintf("bytes %d-%d/%d", b.off, b.info.Size-1, b.info.Size); aws.ToString(out.ContentRange) != want && !whole {
			out.Body.Close()
			return 0, fmt.Errorf("cache: read %s at %d: the store answered range %q, want %q", b.info.Digest, b.off, aws.ToString(out.ContentRange), want)
		}
		b.body, b.bodyOff = out.Body, b.off
	}
	n, err := b.body.Read(p)
	b.off += int64(n)
	b.bodyOff += int64(n)
	if err == io.EOF && b.off < b.info.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		err = b.s.observe(err)
	}
	return n, err
}

func (b *s3Blob) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.info.Size
	default:
		return 0, fmt.Errorf("cache: seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("cache: seek before the start")
	}
	b.off = offset
	return offset, nil
}

func (b *s3Blob) Close() error {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	return nil
}

// Create starts an entry in the staging directory.
func (s *S3) Create(ctx context.Context, k Key) (Writer, error) {
	key, err := s.key(k)
	if err != nil {
		return nil, err
	}
	if err := s.gate(); err != nil {
		// Do not stage what cannot be uploaded: stream uncached.
		return nil, err
	}
	f, err := os.CreateTemp(s.staging, "fill-*")
	if err != nil {
		return nil, fmt.Errorf("cache: create entry: %w", err)
	}
	return &s3Writer{s: s, ctx: ctx, f: f, key: key, origin: k.Origin}, nil
}

type s3Writer struct {
	s      *S3
	ctx    context.Context
	f      *os.File
	key    string
	origin string
	n      int64
}

func (w *s3Writer) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *s3Writer) NewReader() (ReaderAtCloser, error) { return os.Open(w.f.Name()) }

// Commit uploads the staged entry; it is visible once the upload
// completed, and the staging file goes either way.
func (w *s3Writer) Commit(mediaType string) error {
	defer w.Abort()
	if err := w.s.gate(); err != nil {
		return fmt.Errorf("cache: commit entry: %w", err)
	}
	meta := metaFor(w.origin, mediaType)
	var err error
	if w.n <= w.s.partSize {
		_, err = w.s.client.PutObject(w.ctx, &s3.PutObjectInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
			Body: io.NewSectionReader(w.f, 0, w.n), ContentLength: aws.Int64(w.n), Metadata: meta})
	} else {
		err = w.multipart(meta)
	}
	if err = w.s.observe(err); err != nil {
		return fmt.Errorf("cache: commit entry: upload: %w", err)
	}
	return nil
}

// multipart uploads the staged file in parts; a failed upload is
// aborted (and a lifecycle rule covers one a crash interrupted).
func (w *s3Writer) multipart(meta map[string]string) error {
	ctx := w.ctx
	up, err := w.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key), Metadata: meta})
	if err != nil {
		return err
	}
	err = func() error {
		// Parts go up s3UploadParallel at a time: the client's last byte
		// waits for the upload (Commit).
		nparts := int((w.n + w.s.partSize - 1) / w.s.partSize)
		parts := make([]types.CompletedPart, nparts)
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sem := make(chan struct{}, s3UploadParallel)
		errs := make(chan error, nparts)
		var wg sync.WaitGroup
		for i := range nparts {
			off := int64(i) * w.s.partSize
			n := min(w.s.partSize, w.n-off)
			num := int32(i + 1)
			select {
			case sem <- struct{}{}:
			case <-pctx.Done():
			}
			if pctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				out, err := w.s.client.UploadPart(pctx, &s3.UploadPartInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
					UploadId: up.UploadId, PartNumber: aws.Int32(num), Body: io.NewSectionReader(w.f, off, n), ContentLength: aws.Int64(n)})
				if err != nil {
					errs <- fmt.Errorf("part %d: %w", num, err)
					cancel()
					return
				}
				parts[num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		if err := pctx.Err(); err != nil {
			return err
		}
		_, err := w.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}()
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := w.s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(w.s.bucket),
			Key: aws.String(w.key), UploadId: up.UploadId}); aerr != nil {
			w.s.log.Warn("cache: abort multipart upload", "key", w.key, "err", aerr)
		}
	}
	return err
}

func (w *s3Writer) Abort() error {
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache: abort entry: %w", err)
	}
	return nil
}

// Delete removes an entry's object.
func (s *S3) Delete(ctx context.Context, k Key) error {
	key, err := s.key(k)
	if err != nil {
		return err
	}
	if err := s.gate(); err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		s.observe(err)
		return nil
	}
	if err = s.observe(err); err != nil {
		return fmt.Errorf("cache: delete %s: %w", k.Digest, err)
	}
	return nil
}

// Walk lists the entries under the prefix, with a HEAD for each one's
// metadata. Objects that are no entry (a key this storage would not
// write, metadata that does not name the key's origin) are skipped, not
// deleted: the bucket may hold other things.
func (s *S3) Walk(ctx context.Context, fn func(Info) error) error {
	if err := s.gate(); err != nil {
		return err
	}
	root := s.prefix + "blobs/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(root)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err = s.observe(err); err != nil {
			return fmt.Errorf("cache: list %s: %w", root, err)
		}
		infos, err := s.heads(ctx, page.Contents)
		if err != nil {
			return err
		}
		for _, info := range infos {
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// s3WalkParallel is how many HEADs Walk sends at once: a hub starting on
// a bucket of many entries should not wait for each in turn.
const s3WalkParallel = 8

// heads reads the metadata of a page of listed objects, s3WalkParallel at
// a time, in the listing's order; objects that are no entry (or were
// deleted meanwhile) are left out.
func (s *S3) heads(ctx context.Context, objs []types.Object) ([]Info, error) {
	infos := make([]Info, len(objs))
	found := make([]bool, len(objs))
	errs := make([]error, len(objs))
	sem := make(chan struct{}, s3WalkParallel)
	var wg sync.WaitGroup
	for i, o := range objs {
		k, ok := s.parseKey(aws.ToString(o.Key))
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: o.Key})
			if isNotFound(err) {
				return // deleted meanwhile
			}
			if err = s.observe(err); answered(err) {
				// Refused (an object written with a customer key, a
				// bucket policy): no entry this replica can serve, and no
				// reason to stop it from starting.
				s.log.Warn("cache: skipping an object the store refuses to describe", "key", aws.ToString(o.Key), "err", err)
				return
			}
			if err != nil {
				errs[i] = fmt.Errorf("cache: head %s: %w", aws.ToString(o.Key), err)
				return
			}
			infos[i], found[i] = infoOf(k, h.Metadata, h.ContentLength, h.LastModified)
		}()
	}
	wg.Wait()
	var out []Info
	for i := range objs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] {
			out = append(out, infos[i])
		}
	}
	return out, nil
}

// parseKey reads an entry's key back from an object key, and accepts it
// only when key writes exactly that object key.
func (s *S3) parseKey(objKey string) (Key, bool) {
	rest, ok := strings.CutPrefix(objKey, s.prefix+"blobs/")
	if !ok {
		return Key{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return Key{}, false
	}
	origin, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Key{}, false
	}
	k := Key{Origin: string(origin), Digest: parts[1] + ":" + parts[2]}
	if want, err := s.key(k); err != nil || want != objKey {
		return Key{}, false
	}
	return k, true
}
