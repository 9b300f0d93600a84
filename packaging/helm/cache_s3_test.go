package helm_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// hub.cache.backend=s3: the --cache-s3-* flags (all in the hub's
// --help), the access key from a Secret as the standard AWS variables,
// never a literal; bad values refused by the schema or the validation.
func TestHubCacheS3(t *testing.T) {
	objs := mustRender(t, `
agent: {enabled: false}
hub:
  replicas: 2
  database: {existingSecret: db}
  nats: {url: "tls://nats.example.com:4222"}
  keys: {existingSecret: pullgate-hub-keys}
  cache:
    size: 50GiB
    backend: s3
    s3:
      endpoint: https://s3.example.com
      bucket: pullgate-cache
      prefix: prod/
      region: eu-west-1
      pathStyle: true
      existingSecret: pullgate-s3
`)
	d := get[appsv1.Deployment](t, objs, "Deployment", hubName)
	hub := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--cache-size=50GiB", "--cache-backend=s3", "--cache-s3-bucket=pullgate-cache", "--cache-s3-endpoint=https://s3.example.com",
		"--cache-s3-prefix=prod/", "--cache-s3-region=eu-west-1", "--cache-s3-path-style"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v: no %s", hub.Args, a)
		}
	}
	env := map[string]*corev1.SecretKeySelector{}
	for _, e := range hub.Env {
		if e.Value != "" {
			t.Errorf("env %s has a literal value", e.Name)
		}
		env[e.Name] = e.ValueFrom.SecretKeyRef
	}
	if s := env["AWS_ACCESS_KEY_ID"]; s == nil || s.Name != "pullgate-s3" || s.Key != "access-key-id" {
		t.Errorf("AWS_ACCESS_KEY_ID from %+v", s)
	}
	if s := env["AWS_SECRET_ACCESS_KEY"]; s == nil || s.Name != "pullgate-s3" || s.Key != "secret-access-key" {
		t.Errorf("AWS_SECRET_ACCESS_KEY from %+v", s)
	}
	checkHubFlags(t, hub.Args)

	// Without a Secret: the pod's own AWS identity, no AWS_* variables.
	objs = mustRender(t, "agent: {enabled: false}\nhub: {cache: {backend: s3, s3: {bucket: pullgate-cache}}}\n")
	hub = get[appsv1.Deployment](t, objs, "Deployment", hubName).Spec.Template.Spec.Containers[0]
	for _, e := range hub.Env {
		if strings.HasPrefix(e.Name, "AWS_") {
			t.Errorf("env %s without hub.cache.s3.existingSecret", e.Name)
		}
	}
	if !slices.Contains(hub.Args, "--cache-s3-bucket=pullgate-cache") || slices.ContainsFunc(hub.Args, func(a string) bool { return strings.HasPrefix(a, "--cache-s3-endpoint") }) {
		t.Errorf("hub args %v", hub.Args)
	}
	// The default stays local, without any --cache-backend flag.
	hub = get[appsv1.Deployment](t, mustRender(t, "agent: {enabled: false}\n"), "Deployment", hubName).Spec.Template.Spec.Containers[0]
	if slices.ContainsFunc(hub.Args, func(a string) bool {
		return strings.HasPrefix(a, "--cache-backend") || strings.HasPrefix(a, "--cache-s3")
	}) {
		t.Errorf("default hub args %v", hub.Args)
	}

	for _, c := range []struct{ values, want string }{
		{"agent: {enabled: false}\nhub: {cache: {backend: s3}}", "hub.cache.s3.bucket is required"},
		{"agent: {enabled: false}\nhub: {cache: {backend: gcs}}", "backend"},
		{"agent: {enabled: false}\nhub: {cache: {backend: s3, s3: {bucket: Bad_Name}}}", "bucket"},
		{"agent: {enabled: false}\nhub: {cache: {backend: s3, s3: {bucket: b1x, endpoint: 'https://k:s@s3.example.com'}}}", "endpoint"},
		{"agent: {enabled: false}\nhub: {cache: {backend: s3, s3: {bucket: b1x, secretKey: x}}}", "secretKey"},
	} {
		_, err := render(t, c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %q: err %v, want one mentioning %q", c.values, err, c.want)
		}
	}
}
