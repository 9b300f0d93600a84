// Package kubelet is the kubelet image credential provider side of
// pullgate-credential-provider: it reads a CredentialProviderRequest
// (credentialprovider.kubelet.k8s.io/v1) on stdin, asks the local agent,
// and writes a CredentialProviderResponse on stdout.
//
// The request and response are mirrored here field for field (JSON names
// of k8s.io/kubelet/pkg/apis/credentialprovider/v1) instead of importing
// the kubelet's types: those pull in apimachinery, whose initialisation
// would add several milliseconds to every image pull. The tests check the
// mirror against the real types in both directions.
//
// Cache duration. The kubelet caches the returned auth for cacheDuration;
// it must end before the token does, so it is the token's remaining life
// minus a margin (max(30s, 10%)), at least one second, and always shorter
// than the remaining life. With service-account tokens (KEP-4412) the
// generated kubelet config uses cacheType ServiceAccount: the kubelet keys
// its cache by the pod's service account (namespace, name, UID and the
// passed annotations), which is exactly what the hub chooses the install
// by, and the helper never returns the service-account token itself as a
// password (the kubelet rejects that outside cacheType Token).
//
// The kubelet never drops a cached answer when a pull with it fails, and
// the hub kills every token of an install when it is disabled or its
// allow-list changes (the generation moves). Cached for the token's whole
// life, a dead token would make the node's pulls of that image fail for up
// to the token TTL after an `install enable` or `install update` (seen on
// a real kubelet, e2e/k8s). So the cache duration is capped at
// --max-cache-duration (DefaultMaxCache): a new token is asked of the
// agent, which answers from its own cache, that often.
package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/internal/version"
	"github.com/pullgate/pullgate/pkg/wire"
)

// API identifiers.
const (
	APIVersion   = "credentialprovider.kubelet.k8s.io/v1"
	RequestKind  = "CredentialProviderRequest"
	ResponseKind = "CredentialProviderResponse"
	// CacheKeyImage: the kubelet caches per image repository.
	CacheKeyImage = "Image"
)

// DefaultMaxCache caps the cache duration the kubelet is told.
const DefaultMaxCache = 30 * time.Second

// MaxRequest bounds stdin.
const MaxRequest = 1 << 20

// Request mirrors credentialproviderv1.CredentialProviderRequest.
type Request struct {
	APIVersion                string            `json:"apiVersion"`
	Kind                      string            `json:"kind"`
	Image                     string            `json:"image"`
	ServiceAccountToken       string            `json:"serviceAccountToken,omitempty"`
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
}

// Response mirrors credentialproviderv1.CredentialProviderResponse.
type Response struct {
	APIVersion    string                `json:"apiVersion"`
	Kind          string                `json:"kind"`
	CacheKeyType  string                `json:"cacheKeyType"`
	CacheDuration *Duration             `json:"cacheDuration,omitempty"`
	Auth          map[string]AuthConfig `json:"auth,omitempty"`
}

// AuthConfig mirrors credentialproviderv1.AuthConfig.
type AuthConfig struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Duration is encoded like metav1.Duration ("4m30s").
type Duration time.Duration

// MarshalJSON encodes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON decodes a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// ParseRequest decodes and checks a request. Unknown fields are allowed
// (newer kubelets may add some); a wrong apiVersion or kind is not.
func ParseRequest(r io.Reader) (Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequest+1))
	if err != nil {
		return Request{}, fmt.Errorf("read request from stdin: %w", err)
	}
	if len(data) > MaxRequest {
		return Request{}, fmt.Errorf("request on stdin is larger than %d bytes", MaxRequest)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return Request{}, fmt.Errorf("no request on stdin: want a %s %s as JSON", APIVersion, RequestKind)
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Request{}, fmt.Errorf("malformed JSON on stdin at byte %d: %s", se.Offset, se.Error())
		case errors.As(err, &te):
			return Request{}, fmt.Errorf("malformed %s: field %q: want %s", RequestKind, te.Field, te.Type)
		}
		return Request{}, fmt.Errorf("malformed %s JSON on stdin", RequestKind)
	}
	switch {
	case req.APIVersion != APIVersion:
		return Request{}, fmt.Errorf("unsupported apiVersion %q: want %s (set apiVersion: %s in the kubelet's CredentialProviderConfig)", clip(req.APIVersion), APIVersion, APIVersion)
	case req.Kind != RequestKind:
		return Request{}, fmt.Errorf("unsupported kind %q: want %s", clip(req.Kind), RequestKind)
	case req.Image == "":
		return Request{}, errors.New("request has no image")
	}
	return req, nil
}

// clip shortens a value quoted in an error: errors go to the kubelet's
// log, and the request may be up to MaxRequest bytes.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CacheDuration is how long the kubelet may cache a token that expires at
// expires: remaining − max(30s, remaining/10), at least 1s (half the
// remaining life when that is short), always less than the remaining life.
func CacheDuration(now, expires time.Time) (time.Duration, error) {
	remaining := expires.Sub(now)
	if remaining < 2*time.Second {
		return 0, fmt.Errorf("the agent returned a token that expires in %s", remaining.Round(time.Millisecond))
	}
	d := remaining - max(30*time.Second, remaining/10)
	if d < time.Second {
		d = remaining / 2
	}
	return d.Truncate(time.Second), nil
}

// Helper answers requests through the agent.
type Helper struct {
	Socket  string
	Timeout time.Duration
	Now     func() time.Time
	// MaxCache caps the cache duration (0: the token's life decides).
	MaxCache time.Duration
}

// Answer turns a request into a response. A 404 from the agent (no
// install serves the image) is an empty response that the kubelet does not
// cache; other failures are errors.
func (h Helper) Answer(ctx context.Context, req Request) (Response, error) {
	resp := Response{APIVersion: APIVersion, Kind: ResponseKind, CacheKeyType: CacheKeyImage}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	creds, err := agentclient.Credentials(ctx, h.Socket, wire.CredentialsRequest{
		Image: req.Image, ServiceAccountToken: req.ServiceAccountToken, Annotations: req.ServiceAccountAnnotations,
	})
	if errors.Is(err, agentclient.ErrNotFound) {
		zero := Duration(0)
		resp.CacheDuration = &zero
		return resp, nil
	}
	if err != nil {
		return Response{}, err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	d, err := CacheDuration(now(), creds.ExpiresAt)
	if err != nil {
		return Response{}, err
	}
	if h.MaxCache > 0 && d > h.MaxCache {
		d = h.MaxCache
	}
	if creds.Password == req.ServiceAccountToken {
		return Response{}, errors.New("the agent returned the service-account token as the password; refusing")
	}
	// agentclient checked that creds.Registry is the image's registry:
	// the auth map names nothing else.
	key := creds.Registry
	if key == "" {
		key = agentclient.RegistryOf(req.Image)
	}
	cd := Duration(d)
	resp.CacheDuration = &cd
	resp.Auth = map[string]AuthConfig{key: {Username: creds.Username, Password: creds.Password}}
	return resp, nil
}

// Main runs kubelet mode with the helper's arguments and returns the exit
// code. Errors go to stderr and never contain a token.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pullgate-credential-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	h := Helper{}
	fs.StringVar(&h.Socket, "socket", wire.DefaultSocket, "the pullgate agent's unix socket")
	fs.DurationVar(&h.Timeout, "timeout", 12*time.Second, "how long to wait for the agent")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.DurationVar(&h.MaxCache, "max-cache-duration", DefaultMaxCache, "the longest the kubelet may cache an answer (a token the hub killed by install enable/update is used that long at most); 0: until shortly before the token expires")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: pullgate-credential-provider [--socket PATH] [--timeout DURATION] [--max-cache-duration DURATION] < CredentialProviderRequest
       pullgate-credential-provider --version

A kubelet image credential provider (%s): reads a
CredentialProviderRequest on stdin and answers install tokens from the local
pullgate agent. Invoked as docker-credential-pullgate it is a
docker-credential-helper instead (get <<< SERVER_URL).

`, APIVersion)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("pullgate-credential-provider"))
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pullgate-credential-provider: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if h.MaxCache < 0 {
		fmt.Fprintf(stderr, "pullgate-credential-provider: --max-cache-duration %s: want 0 (no cap) or more\n", h.MaxCache)
		return 2
	}
	req, err := ParseRequest(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "pullgate-credential-provider:", err)
		return 1
	}
	resp, err := h.Answer(context.Background(), req)
	if err != nil {
		fmt.Fprintf(stderr, "pullgate-credential-provider: image %s: %v\n", req.Image, err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(resp); err != nil {
		fmt.Fprintln(stderr, "pullgate-credential-provider: write response:", err)
		return 1
	}
	return 0
}
