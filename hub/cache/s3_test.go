package cache_test

import (
	"strconv"
	"testing"

	"github.com/pullgate/pullgate/hub/cache"
	"github.com/pullgate/pullgate/hub/cache/storagetest"
	"github.com/pullgate/pullgate/internal/testweed"
)

// s3Backing is a prefix of a bucket on a real weed; every Open gets a
// staging directory of its own, as every replica has.
type s3Backing struct {
	srv    *testweed.Server
	bucket string
	prefix string
}

func (b s3Backing) Open(t *testing.T) cache.Storage {
	t.Helper()
	s, err := cache.NewS3(cache.S3Config{Client: b.srv.Client(), Bucket: b.bucket, Prefix: b.prefix,
		StagingDir: t.TempDir(), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3Conformance runs the storage suite against SeaweedFS: one
// server and bucket, a fresh prefix per test; the large entry takes a
// three-part multipart upload.
func TestS3Conformance(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	n := 0
	storagetest.Run(t, func(t *testing.T) storagetest.Backing {
		n++
		return s3Backing{srv: srv, bucket: bucket, prefix: "t" + strconv.Itoa(n) + "/"}
	}, storagetest.Options{LargeSize: 12 << 20})
}
