package helm_test

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The chart serves NATS over TLS by default: a generated CA and server
// certificate, the hub serving with it, the agents trusting its ca.crt and
// using tls://. Plain text takes an explicit insecure value.
func TestNATSTLS(t *testing.T) {
	objs := mustRender(t, agentValues+`
hub:
  publicURL: https://hub.example.com
  nats: {tls: {dnsNames: [nats.example.com]}}
`)
	sec := get[corev1.Secret](t, objs, "Secret", hubName+"-nats-tls")
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("NATS TLS secret type %s", sec.Type)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatalf("generated key pair: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.Data["ca.crt"]) {
		t.Fatal("no ca.crt in the generated secret")
	}
	for _, name := range []string{hubName + "." + namespace + ".svc", hubName, "hub.example.com", "nats.example.com"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("generated certificate for %s: %v", name, err)
		}
	}

	d := get[appsv1.Deployment](t, objs, "Deployment", hubName)
	hub := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--nats-tls-cert=/etc/pullgate/nats-tls/tls.crt", "--nats-tls-key=/etc/pullgate/nats-tls/tls.key"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v: no %s", hub.Args, a)
		}
	}
	if slices.Contains(hub.Args, "--insecure-nats") {
		t.Error("hub runs with --insecure-nats by default")
	}
	if v := volume(t, d.Spec.Template.Spec, "nats-tls"); v.Secret.SecretName != hubName+"-nats-tls" {
		t.Errorf("hub NATS TLS volume %+v", v)
	}
	if m := mount(t, hub, "nats-tls"); m.MountPath != "/etc/pullgate/nats-tls" || !m.ReadOnly {
		t.Errorf("hub NATS TLS mount %+v", m)
	}
	ds := get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName)
	agent := ds.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--nats-url=tls://" + hubName + "." + namespace + ".svc:4222", "--nats-ca=/etc/pullgate/nats-ca/ca.crt"} {
		if !slices.Contains(agent.Args, a) {
			t.Errorf("agent args %v: no %s", agent.Args, a)
		}
	}
	if v := volume(t, ds.Spec.Template.Spec, "nats-ca"); v.Secret == nil || v.Secret.SecretName != hubName+"-nats-tls" || v.Secret.Items[0].Key != "ca.crt" {
		t.Errorf("agent NATS CA volume %+v", v)
	}
	if m := mount(t, agent, "nats-ca"); m.MountPath != "/etc/pullgate/nats-ca" || !m.ReadOnly {
		t.Errorf("agent NATS CA mount %+v", m)
	}
	checkHubFlags(t, hub.Args)
	checkAgentFlags(t, agent.Args)

	// The operator's own Secret: nothing generated.
	objs = mustRender(t, agentValues+"hub: {nats: {tls: {secretName: my-nats-tls}}}\n")
	if objs.has("Secret", hubName+"-nats-tls") {
		t.Error("a NATS TLS secret is generated although hub.nats.tls.secretName is set")
	}
	if v := volume(t, get[appsv1.Deployment](t, objs, "Deployment", hubName).Spec.Template.Spec, "nats-tls"); v.Secret.SecretName != "my-nats-tls" {
		t.Errorf("hub NATS TLS volume %+v", v)
	}
	if v := volume(t, get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec, "nats-ca"); v.Secret.SecretName != "my-nats-tls" {
		t.Errorf("agent NATS CA volume %+v", v)
	}

	// Explicitly insecure: plain text both sides, no TLS secret.
	objs = mustRender(t, agentValues+"hub: {nats: {insecure: true}}\n")
	hub = get[appsv1.Deployment](t, objs, "Deployment", hubName).Spec.Template.Spec.Containers[0]
	agent = get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec.Containers[0]
	if !slices.Contains(hub.Args, "--insecure-nats") || slices.ContainsFunc(hub.Args, func(a string) bool { return strings.HasPrefix(a, "--nats-tls") }) ||
		!slices.Contains(agent.Args, "--nats-url=nats://"+hubName+"."+namespace+".svc:4222") || objs.has("Secret", hubName+"-nats-tls") ||
		// The agent refuses plain text off loopback without the flag.
		!slices.Contains(agent.Args, "--insecure-nats") {
		t.Errorf("insecure NATS: hub %v agent %v", hub.Args, agent.Args)
	}
	checkHubFlags(t, hub.Args)

	// Plain text without the insecure value does not render.
	for _, c := range []struct{ values, want string }{
		{"agent: {enabled: false}\nhub: {nats: {url: 'nats://nats.example.com:4222'}}", "hub.nats.insecure=true"},
		{"hub: {enabled: false}\nagent: {natsURL: 'nats://hub.example.com:4222', joinToken: {value: x}, kubelet: {matchImages: [a.io]}}", "agent.insecureNATS=true"},
		{"hub: {enabled: false}\nagent: {natsURL: 'tls://a:1,nats://10.0.0.1:4222', joinToken: {value: x}, kubelet: {matchImages: [a.io]}}", "plain text"},
		{"hub: {enabled: false}\nagent: {natsURL: 'tls://a:1', natsCA: {secretName: a, configMapName: b}, joinToken: {value: x}, kubelet: {matchImages: [a.io]}}", "not both"},
	} {
		if _, err := render(t, c.values); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %q: err %v, want one mentioning %q", c.values, err, c.want)
		}
	}
	// Loopback and explicit opt-ins render.
	for _, v := range []string{
		"agent: {enabled: false}\nhub: {nats: {url: 'nats://127.0.0.1:4222'}}",
		"agent: {enabled: false}\nhub: {nats: {url: 'nats://nats.example.com:4222', insecure: true}}",
		"hub: {enabled: false}\nagent: {natsURL: 'nats://hub.example.com:4222', insecureNATS: true, joinToken: {value: x}, kubelet: {matchImages: [a.io]}}",
	} {
		if _, err := render(t, v); err != nil {
			t.Errorf("values %q: %v", v, err)
		}
	}
}
