package server

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pullgate/pullgate/hub/cli"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/internal/testweed"
)

// Bad --cache-backend/--cache-s3-* values: exit 2 and a message naming
// the flag, before anything starts.
func TestServeCacheS3Flags(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds")
	os.WriteFile(creds, []byte("[default]\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cache-backend", "gcs"}, "--cache-backend"},
		{[]string{"--cache-backend", "s3"}, "--cache-s3-bucket"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "Bad_Bucket"}, "--cache-s3-bucket"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "b1x", "--cache-s3-endpoint", "ftp://x"}, "--cache-s3-endpoint"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "b1x", "--cache-s3-endpoint", "https://AKID:hunter2-SECRET@s3.example"}, "--cache-s3-endpoint"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "b1x", "--cache-s3-prefix", "/abs"}, "--cache-s3-prefix"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "b1x", "--cache-s3-prefix", "a/../b"}, "--cache-s3-prefix"},
		{[]string{"--cache-backend", "s3", "--cache-s3-bucket", "b1x", "--cache-s3-credentials-file", "/nonexistent/creds"}, "--cache-s3-credentials-file"},
		{[]string{"--cache-s3-bucket", "b1x"}, "needs --cache-backend s3"},
		{[]string{"--cache-s3-credentials-file", creds}, "--cache-s3-credentials-file"},
	} {
		root := cli.NewRoot(Command())
		root.SetArgs(append([]string{"serve", "--data", t.TempDir()}, tc.args...))
		var out, errOut testlog.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		code := cli.Execute(context.Background(), root)
		if code != cli.ExitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("serve %v: exit %d, %q; want exit 2 naming %s", tc.args, code, errOut.String(), tc.want)
		}
		if strings.Contains(errOut.String()+out.String(), "hunter2-SECRET") {
			t.Errorf("serve %v printed the endpoint's password", tc.args)
		}
	}
}

// A hub on the s3 backend (a real weed, signed requests, credentials from
// a shared-credentials file or the AWS environment): a pull fills the
// bucket, the secret appears in no log, no error and no /metrics, and a
// wrong secret stops the hub with an error naming the bucket flag.
func TestServeCacheS3(t *testing.T) {
	srv := testweed.Start(t)
	bucket := srv.Bucket(t)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3cfg := func(file string) func(*Config) {
		return func(c *Config) {
			c.Cache.Backend = "s3"
			c.Cache.S3 = S3CacheConfig{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "hub/", PathStyle: true, CredentialsFile: file}
		}
	}

	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "s3-cache-SECRET-pw"))
	_, layer := up.PushBlobImage(t, "org/app", "v1", 1<<20)
	h, err := startHubWith(t, t.TempDir(), "", s3cfg(creds))
	if err != nil {
		t.Fatal(err)
	}
	tok := pullInstall(t, h, up)
	pullFirstLayer(t, h, "registry.test/org/app:v1", tok)

	// The layer is an object in the bucket, under the prefix.
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range out.Contents {
		if strings.HasPrefix(*o.Key, "hub/blobs/") && strings.HasSuffix(*o.Key, "/sha256/"+layer.Hex) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no object for layer %s in the bucket", layer)
	}
	_, metrics := get(t, h.mon+"/metrics")
	if !strings.Contains(metrics, "pullgate_cache_storage_up 1") {
		t.Error("/metrics lacks pullgate_cache_storage_up 1")
	}
	h.stop(t)
	if s := h.logs.String() + metrics; strings.Contains(s, srv.SecretKey) {
		t.Fatal("the object store's secret key leaked into the logs or /metrics")
	}

	// The standard AWS environment works as well.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	h2, err := startHubWith(t, t.TempDir(), "", s3cfg(""))
	if err != nil {
		t.Fatalf("hub with credentials from the environment: %v", err)
	}
	h2.stop(t)
	if strings.Contains(h2.logs.String(), srv.SecretKey) {
		t.Fatal("the secret key from the environment leaked into the logs")
	}

	// A wrong secret: the hub does not start, and says which flag.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-SECRET-"+srv.SecretKey[:8])
	h3, err := startHubWith(t, t.TempDir(), "", s3cfg(""))
	if err == nil {
		h3.stop(t)
		t.Fatal("a hub with a wrong object store secret started")
	}
	if !strings.Contains(err.Error(), "--cache-s3-bucket") || strings.Contains(err.Error(), "wrong-SECRET") {
		t.Fatalf("wrong secret: %v; want an error naming --cache-s3-bucket, without the secret", err)
	}
}

// A credentials file the SDK cannot use: the hub does not start, and its
// error does not quote the file.
func TestServeCacheS3BadCredentialsFile(t *testing.T) {
	for _, content := range []string{
		"[default\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = bad-file-SECRET-1\n",
		"[default]\naws_access_key_id AKIDEXAMPLE bad-file-SECRET-2\n",
		"[other]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = bad-file-SECRET-3\n",
	} {
		creds := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(creds, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		port := testupstream.FreePort(t) // nothing listens there
		h, err := startHubWith(t, t.TempDir(), "", func(c *Config) {
			c.Cache.Backend = "s3"
			c.Cache.S3 = S3CacheConfig{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), Bucket: "pullgate-cache", PathStyle: true, CredentialsFile: creds}
		})
		var logs string
		if err == nil {
			logs = h.logs.String()
			h.stop(t)
		}
		if err == nil || !strings.Contains(err.Error(), "no usable credentials") {
			t.Errorf("credentials file %q: hub started (%v), want it refused for no usable credentials\n%s", strings.SplitN(content, "\n", 2)[0], err, logs)
		}
		if err != nil && strings.Contains(err.Error(), "bad-file-SECRET") || strings.Contains(logs, "bad-file-SECRET") {
			t.Fatalf("the credentials file's secret is in the error or the logs: %v\n%s", err, logs)
		}
	}
}
