// Package testweed runs a real S3 server for tests: SeaweedFS's weed
// (master, volume, filer and S3 gateway in one process) on 127.0.0.1,
// with signed requests required, as a production object store would.
// make tools builds it into .cache/bin/weed; a test that needs it fails
// when it is missing (WEED_BIN names another binary).
package testweed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// BinEnv names the weed binary to use instead of .cache/bin/weed.
const BinEnv = "WEED_BIN"

// readyTimeout bounds a start: weed's master elects itself and the
// volume server registers before the first write succeeds.
const readyTimeout = 90 * time.Second

// Server is a running (or stopped) weed.
type Server struct {
	t   testing.TB
	bin string
	dir string
	// Endpoint is the S3 URL (http://127.0.0.1:port).
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
	logPath   string
	starts    int
}

// Binary locates weed or fails t.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("testweed: %s=%q: %v", BinEnv, p, err)
		}
		return abs
	}
	p := filepath.Join(testupstream.RepoRoot(t), ".cache", "bin", "weed")
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	t.Fatalf("testweed: no weed binary at %s: run make tools (or set %s)", p, BinEnv)
	return ""
}

// Start starts weed with a fresh data directory and one identity (the
// access and secret keys of the Server) allowed everything, and waits
// until it accepts writes. It is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), AccessKey: "pullgate-test", SecretKey: randomKey(), Region: "us-east-1"}
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "pullgate",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, _ := json.Marshal(conf)
	confPath := filepath.Join(s.dir, "s3.json")
	if err := os.WriteFile(confPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports := make([]int, 8)
		for i := range ports {
			ports[i] = testupstream.FreePort(t)
		}
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(ports[6])
		s.args = []string{"server", "-dir=" + filepath.Join(s.dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-master.port=" + strconv.Itoa(ports[0]), "-master.port.grpc=" + strconv.Itoa(ports[1]),
			"-volume.port=" + strconv.Itoa(ports[2]), "-volume.port.grpc=" + strconv.Itoa(ports[3]),
			"-filer=true", "-filer.port=" + strconv.Itoa(ports[4]), "-filer.port.grpc=" + strconv.Itoa(ports[5]),
			"-s3", "-s3.port=" + strconv.Itoa(ports[6]), "-s3.port.grpc=" + strconv.Itoa(ports[7]),
			"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + confPath,
			"-master.telemetry=false", "-master.volumeSizeLimitMB=256", "-volume.max=0"}
		began := time.Now()
		if lastErr = s.start(); lastErr == nil {
			t.Logf("testweed: S3 at %s ready after %s", s.Endpoint, time.Since(began).Round(100*time.Millisecond))
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
	}
	t.Fatalf("testweed: %v", lastErr)
	return nil
}

// randomKey is 32 random hex digits.
func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// start runs weed with s.args and waits until a bucket can be created and
// written.
func (s *Server) start() error {
	s.starts++
	s.logPath = filepath.Join(s.dir, fmt.Sprintf("weed-%d.log", s.starts))
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	return s.waitReady()
}

func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	c := s.Client()
	probe := "pullgate-ready"
	var err error
	for {
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(probe)})
		if err == nil || strings.Contains(err.Error(), "BucketAlready") {
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(probe), Key: aws.String("probe"), Body: strings.NewReader("ok")})
			if err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("weed exited before it was ready; log tail:\n%s", s.LogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("weed not ready after %s (last: %v); log tail:\n%s", readyTimeout, err, s.LogTail(30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop kills weed and waits for it to exit (a store gone away).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("testweed: log tail:\n%s", s.LogTail(20))
	}
}

// Restart starts a stopped weed again on the same ports and data, and
// waits until it accepts writes.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	deadline := time.Now().Add(readyTimeout)
	for {
		if err = s.start(); err == nil {
			return
		}
		s.Stop()
		if time.Now().After(deadline) {
			s.t.Fatalf("testweed: restart: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // a port still held by the old process
	}
}

// Client is an S3 client for the server (path-style, signed with the
// server's keys).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint), Region: s.Region, UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:                 &http.Client{Timeout: 30 * time.Second},
		RetryMaxAttempts:           2, // as the hub's client (cache.NewS3Client)
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Bucket creates a bucket with a fresh name and returns the name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "pullgate-" + strings.ToLower(randomKey()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testweed: create bucket %s: %v", name, err)
	}
	return name
}

// LogTail returns the last n lines of weed's output.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
