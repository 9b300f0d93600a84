package cache

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3ClientConfig says how to reach an S3-compatible object store.
type S3ClientConfig struct {
	// Endpoint is the store's URL (https://..., or http:// for a store on
	// a trusted network); "" is AWS S3 itself.
	Endpoint string
	// Region: the bucket's region ("" takes AWS_REGION or the shared
	// config's, else us-east-1: most other stores ignore it).
	Region string
	// PathStyle addresses buckets as <endpoint>/<bucket> instead of
	// <bucket>.<endpoint> (most self-hosted stores need it).
	PathStyle bool
	// CredentialsFile is a shared-credentials file (the AWS format,
	// [default] aws_access_key_id/aws_secret_access_key) to use instead of
	// the standard chain (environment, shared config, web identity, the
	// instance's role).
	CredentialsFile string
	// Profile picks a profile of the shared config or CredentialsFile.
	Profile string
}

// s3 client timeouts: a store that does not accept a connection or
// answer a request's headers soon is treated as down (the cache streams
// from the upstream meanwhile).
const (
	s3DialTimeout   = 3 * time.Second
	s3HeaderTimeout = 30 * time.Second
)

// NewS3Client builds an S3 client. Credentials come from the standard AWS
// chain or cfg.CredentialsFile; they are never logged. It contacts
// nothing.
func NewS3Client(ctx context.Context, cfg S3ClientConfig) (*s3.Client, error) {
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("s3 endpoint %q: want http(s)://host[:port] without credentials", redactURL(cfg.Endpoint))
		}
	}
	httpClient := awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) {
		d.Timeout = s3DialTimeout
	}).WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = s3HeaderTimeout
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		// Two attempts: a store that is down fails fast, and the pull
		// goes to the upstream.
		config.WithRetryMaxAttempts(2),
		// Checksums only where S3 requires them: self-hosted stores differ
		// in what trailing checksums they accept, and the cache verifies
		// every entry's digest itself before it uploads it.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.CredentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{cfg.CredentialsFile}))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 client config: %w", err)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}

// redactURL drops anything after the host (and userinfo) of a URL that
// failed to parse or check, for an error message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	return u.String()
}
