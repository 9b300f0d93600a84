// Package kubeletconfig builds the kubelet's CredentialProviderConfig
// (kubelet.config.k8s.io/v1) that runs pullgate-credential-provider.
//
// The object is built with the kubelet's own Go types
// (k8s.io/kubelet/config/v1) and printed with sigs.k8s.io/yaml.
package kubeletconfig

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullgate/pullgate/pkg/wire"
)

// Defaults.
const (
	PluginName           = "pullgate-credential-provider"
	ProviderAPIVersion   = "credentialprovider.kubelet.k8s.io/v1"
	ConfigAPIVersion     = "kubelet.config.k8s.io/v1"
	ConfigKind           = "CredentialProviderConfig"
	DefaultAudience      = "pullgate"
	DefaultCacheDuration = 5 * time.Minute
)

// Options describe the provider entry.
type Options struct {
	// Shared: a multi-workspace cluster. The kubelet passes each pod's
	// service-account token (KEP-4412) so the hub can choose the pod's
	// install; pods without a service account get nothing.
	Shared bool
	// MatchImages are the kubelet's image patterns for the helper (the
	// upstream hosts mirrored through the hub, and the hub's host).
	MatchImages []string
	// Socket is the agent's socket passed to the helper.
	Socket string
	// PluginName is the helper's file name in the kubelet's
	// --image-credential-provider-bin-dir.
	PluginName string
	// CacheDuration is defaultCacheDuration (the helper sets a shorter
	// cacheDuration per response, from the token's remaining life).
	CacheDuration time.Duration
	// Audience of the service-account tokens (Shared only).
	Audience string
}

// Build returns the configuration.
func Build(o Options) (kubeletv1.CredentialProviderConfig, error) {
	if o.PluginName == "" {
		o.PluginName = PluginName
	}
	if o.Socket == "" {
		o.Socket = wire.DefaultSocket
	}
	if o.CacheDuration == 0 {
		o.CacheDuration = DefaultCacheDuration
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	var errs []error
	if len(o.MatchImages) == 0 {
		errs = append(errs, errors.New("at least one --match-image is required (e.g. ghcr.io, *.dkr.ecr.*.amazonaws.com, or the hub's host)"))
	}
	for _, m := range o.MatchImages {
		if err := checkMatchImage(m); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.ContainsAny(o.PluginName, "/ \t") {
		errs = append(errs, fmt.Errorf("plugin name %q must be a file name", o.PluginName))
	}
	if o.CacheDuration < 0 {
		errs = append(errs, errors.New("cache duration must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return kubeletv1.CredentialProviderConfig{}, err
	}
	p := kubeletv1.CredentialProvider{
		Name:                 o.PluginName,
		MatchImages:          o.MatchImages,
		DefaultCacheDuration: &metav1.Duration{Duration: o.CacheDuration},
		APIVersion:           ProviderAPIVersion,
		Args:                 []string{"--socket", o.Socket},
	}
	if o.Shared {
		require := true
		p.TokenAttributes = &kubeletv1.ServiceAccountTokenAttributes{
			ServiceAccountTokenAudience: o.Audience,
			// The hub picks the install from the service account
			// (namespace/name), not from pod-specific claims, so the
			// kubelet may share credentials per service account.
			CacheType:             kubeletv1.ServiceAccountServiceAccountTokenCacheType,
			RequireServiceAccount: &require,
		}
	}
	return kubeletv1.CredentialProviderConfig{
		TypeMeta:  metav1.TypeMeta{APIVersion: ConfigAPIVersion, Kind: ConfigKind},
		Providers: []kubeletv1.CredentialProvider{p},
	}, nil
}

func checkMatchImage(m string) error {
	switch {
	case m == "":
		return errors.New("match image: empty pattern")
	case strings.Contains(m, "://"):
		return fmt.Errorf("match image %q: no scheme, just host[:port][/path]", m)
	case strings.ContainsAny(m, " \t\r\n@"):
		return fmt.Errorf("match image %q: not a host[:port][/path] pattern", m)
	}
	return nil
}

// Marshal prints the configuration as YAML (sigs.k8s.io/yaml: the
// types' JSON tags, as Kubernetes reads it).
func Marshal(cfg kubeletv1.CredentialProviderConfig) ([]byte, error) {
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubelet config: %w", err)
	}
	return out, nil
}

// Parse reads a configuration strictly: unknown fields and duplicate keys
// are errors, as for the kubelet.
func Parse(data []byte) (kubeletv1.CredentialProviderConfig, error) {
	var cfg kubeletv1.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, fmt.Errorf("parse kubelet credential provider config: %w", err)
	}
	return cfg, nil
}
