package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/cache"
)

// S3CacheConfig is the object store of --cache-backend s3. Credentials
// are not part of it: they come from the standard AWS chain (environment,
// shared config, web identity, the instance's role) or CredentialsFile,
// and are never logged.
type S3CacheConfig struct {
	Endpoint        string
	Bucket          string
	Prefix          string
	Region          string
	PathStyle       bool
	CredentialsFile string
}

// s3CheckTimeout bounds the start-up check of the bucket.
const s3CheckTimeout = 15 * time.Second

// openS3Storage opens the s3 backend and checks its bucket: a bucket that
// is missing or refused stops the hub with the store's answer; a store
// that does not answer is only logged (pulls go to the upstream until it
// does, like an outage later on).
func openS3Storage(ctx context.Context, cfg Config, staging string) (*cache.S3, error) {
	sc := cfg.Cache.S3
	client, err := cache.NewS3Client(ctx, cache.S3ClientConfig{Endpoint: sc.Endpoint, Region: sc.Region, PathStyle: sc.PathStyle,
		CredentialsFile: sc.CredentialsFile})
	if err != nil {
		return nil, fmt.Errorf("cache backend s3: %w", err)
	}
	s, err := cache.NewS3(cache.S3Config{Client: client, Bucket: sc.Bucket, Prefix: sc.Prefix, StagingDir: staging, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s3CheckTimeout)
	defer cancel()
	// No credentials is a configuration error, not an outage: say so at
	// start (the SDK's message names no secret).
	creds := client.Options().Credentials
	if creds == nil {
		return nil, errors.New("cache backend s3: no AWS credentials configured")
	}
	if _, err := creds.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("cache backend s3: no usable credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config, --cache-s3-credentials-file): %w", err)
	}
	switch err := s.Check(cctx); {
	case errors.Is(err, cache.ErrUnavailable):
		cfg.Logger.Warn("cache object store unavailable at start; pulls go to the upstream until it answers", "endpoint", sc.Endpoint, "bucket", sc.Bucket, "err", err)
	case err != nil:
		return nil, fmt.Errorf("--cache-s3-bucket %s: %w", sc.Bucket, err)
	}
	cfg.Logger.Info("cache on an object store", "endpoint", sc.Endpoint, "bucket", sc.Bucket, "prefix", s.Prefix(), "staging", staging)
	return s, nil
}

// bucketName is S3's rule for bucket names (3-63 lower-case letters,
// digits, dots and hyphens, starting and ending with a letter or digit).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// s3CacheFlags checks the --cache-backend and --cache-s3-* flags; set
// names the flags given on the command line.
func s3CacheFlags(cfg *Config, set func(name string) bool) error {
	s3Flags := []string{"cache-s3-endpoint", "cache-s3-bucket", "cache-s3-prefix", "cache-s3-region", "cache-s3-path-style", "cache-s3-credentials-file"}
	switch cfg.Cache.Backend {
	case "local":
		for _, f := range s3Flags {
			if set(f) {
				return fmt.Errorf("--%s: needs --cache-backend s3", f)
			}
		}
		return nil
	case "s3":
	default:
		return fmt.Errorf("--cache-backend %q: want local or s3", cfg.Cache.Backend)
	}
	sc := &cfg.Cache.S3
	if sc.Bucket == "" {
		return errors.New("--cache-s3-bucket: required with --cache-backend s3")
	}
	if !bucketName.MatchString(sc.Bucket) {
		return fmt.Errorf("--cache-s3-bucket %q: want an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)", sc.Bucket)
	}
	if sc.Endpoint != "" {
		u, err := url.Parse(sc.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			// Not echoed whole: a URL may carry a password.
			return errors.New("--cache-s3-endpoint: want http(s)://host[:port], without credentials, path or query")
		}
	}
	if strings.HasPrefix(sc.Prefix, "/") || strings.Contains(sc.Prefix, "//") || strings.Contains("/"+sc.Prefix+"/", "/../") {
		return fmt.Errorf("--cache-s3-prefix %q: want a relative key prefix such as pullgate/cache", sc.Prefix)
	}
	if sc.CredentialsFile != "" {
		if _, err := os.Stat(sc.CredentialsFile); err != nil {
			return fmt.Errorf("--cache-s3-credentials-file: %w", err)
		}
	}
	return nil
}
