package helm_test

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

const akashValues = agentValues + `
hub: {publicURL: https://hub.example.com}
akash:
  enabled: true
  cluster: provider-1
`

func TestAkashDisabled(t *testing.T) {
	objs := mustRender(t, agentValues)
	for _, k := range objs.keys() {
		if strings.Contains(k, "akash") || strings.HasPrefix(k, "MutatingWebhookConfiguration/") {
			t.Errorf("akash.enabled=false renders %s", k)
		}
	}
}

func TestAkashController(t *testing.T) {
	objs := mustRender(t, akashValues)
	d := get[appsv1.Deployment](t, objs, "Deployment", akashName)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if *d.Spec.Replicas != 1 || !slices.Equal(c.Command, []string{"/usr/local/bin/pullgate-agent"}) || c.Image != get[appsv1.DaemonSet](t, objs, "DaemonSet", agentName).Spec.Template.Spec.Containers[0].Image {
		t.Errorf("deployment: replicas %d, command %v, image %s", *d.Spec.Replicas, c.Command, c.Image)
	}
	wantArgs := []string{"akash", "--hub=https://hub.example.com", "--cluster=provider-1",
		"--token-file=/var/run/secrets/pullgate-akash/token", "--resync=5m", "--metrics-listen=:9466"}
	if !slices.Equal(c.Args[:len(wantArgs)], wantArgs) || slices.Contains(c.Args, "--import-credentials") {
		t.Errorf("args %v", c.Args)
	}
	checkFlags(t, binaries(t)+"/pullgate-agent", []string{"akash", "--help"}, c.Args[1:])
	tok := volume(t, pod, "hub-token").Projected.Sources[0].ServiceAccountToken
	if tok == nil || tok.Audience != "pullgate" || *tok.ExpirationSeconds != 600 || tok.Path != "token" {
		t.Errorf("hub token %+v", tok)
	}
	if pod.ServiceAccountName != akashName || c.Env != nil || pod.HostNetwork {
		t.Errorf("pod %+v", pod)
	}
	// RBAC: namespaces get/list/watch, nothing else.
	cr := get[rbacv1.ClusterRole](t, objs, "ClusterRole", akashName)
	if len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Resources, []string{"namespaces"}) ||
		!slices.Equal(cr.Rules[0].Verbs, []string{"get", "list", "watch"}) || !slices.Equal(cr.Rules[0].APIGroups, []string{""}) {
		t.Errorf("cluster role %+v", cr.Rules)
	}
	crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", akashName)
	if crb.RoleRef.Name != akashName || crb.Subjects[0].Name != akashName || crb.Subjects[0].Namespace != namespace {
		t.Errorf("binding %+v", crb)
	}
	for _, k := range []string{"Role/" + akashName + "-manifests", "Service/" + akashName, "MutatingWebhookConfiguration/" + akashName,
		"PodDisruptionBudget/" + akashName} {
		if _, ok := objs[k]; ok {
			t.Errorf("%s rendered without importCredentials", k)
		}
	}

	// Overrides: audience, API server, hub CA, host network.
	objs = mustRender(t, akashValues+`  tokenAudience: provider-aud
  apiServer: 10.250.0.1:6443
  hubCA: {configMapName: hub-ca}
  hostNetwork: true
  hubURL: http://10.250.0.1:5080
  insecureHub: true
`)
	d = get[appsv1.Deployment](t, objs, "Deployment", akashName)
	pod, c = d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]
	if a := volume(t, pod, "hub-token").Projected.Sources[0].ServiceAccountToken.Audience; a != "provider-aud" {
		t.Errorf("audience %s", a)
	}
	if !slices.Equal(c.Env, []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "10.250.0.1"}, {Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}}) {
		t.Errorf("env %+v", c.Env)
	}
	if v := volume(t, pod, "hub-ca"); v.ConfigMap == nil || v.ConfigMap.Name != "hub-ca" {
		t.Errorf("hub CA volume %+v", v)
	}
	for _, a := range []string{"--hub-ca=/etc/pullgate/hub-ca/ca.crt", "--insecure-hub", "--hub=http://10.250.0.1:5080"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v", pod.HostNetwork)
	}
	checkFlags(t, binaries(t)+"/pullgate-agent", []string{"akash", "--help"}, c.Args[1:])
}

func TestAkashImportCredentials(t *testing.T) {
	objs := mustRender(t, akashValues+`  importCredentials: true
  webhook: {ipAddresses: [10.250.0.1]}
`)
	role := get[rbacv1.Role](t, objs, "Role", akashName+"-manifests")
	if role.Namespace != "lease" || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].APIGroups, []string{"akash.network"}) ||
		!slices.Equal(role.Rules[0].Resources, []string{"manifests"}) || !slices.Equal(role.Rules[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("role %+v", role)
	}
	rb := get[rbacv1.RoleBinding](t, objs, "RoleBinding", akashName+"-manifests")
	if rb.RoleRef.Name != akashName+"-manifests" || rb.Subjects[0].Name != akashName || rb.Subjects[0].Namespace != namespace {
		t.Errorf("role binding %+v", rb)
	}
	d := get[appsv1.Deployment](t, objs, "Deployment", akashName)
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d with the webhook", *d.Spec.Replicas)
	}
	for _, a := range []string{"--import-credentials", "--manifest-namespace=lease", "--webhook-listen=:8443",
		"--webhook-cert=/etc/pullgate/webhook-tls/tls.crt", "--webhook-key=/etc/pullgate/webhook-tls/tls.key"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	checkFlags(t, binaries(t)+"/pullgate-agent", []string{"akash", "--help"}, c.Args[1:])
	pdb := get[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", akashName)
	if pdb.Spec.MaxUnavailable.IntVal != 1 {
		t.Errorf("pdb %+v", pdb.Spec)
	}
	sec := get[corev1.Secret](t, objs, "Secret", akashName+"-webhook-tls")
	svc := get[corev1.Service](t, objs, "Service", akashName)
	if svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.StrVal != "webhook" {
		t.Errorf("service %+v", svc.Spec)
	}
	mwc := get[admissionregv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", akashName)
	w := mwc.Webhooks[0]
	if *w.FailurePolicy != admissionregv1.Ignore || *w.SideEffects != admissionregv1.SideEffectClassNone || *w.TimeoutSeconds != 5 ||
		*w.ReinvocationPolicy != admissionregv1.NeverReinvocationPolicy || !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("webhook %+v", w)
	}
	if r := w.Rules[0]; !slices.Equal(r.Operations, []admissionregv1.OperationType{admissionregv1.Create}) || !slices.Equal(r.Resources, []string{"pods"}) {
		t.Errorf("rules %+v", w.Rules)
	}
	if e := w.NamespaceSelector.MatchExpressions; len(e) != 1 || e[0].Key != "akash.network/lease.id.owner" || e[0].Operator != "Exists" {
		t.Errorf("namespace selector %+v", w.NamespaceSelector)
	}
	if s := w.ClientConfig.Service; s == nil || s.Name != akashName || s.Namespace != namespace || *s.Path != "/mutate-pods" ||
		string(w.ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Errorf("client config %+v", w.ClientConfig)
	}
	// The certificate is for the Service and the extra IP, signed by the
	// CA in the caBundle.
	checkCert(t, sec.Data["tls.crt"], w.ClientConfig.CABundle, akashName+"."+namespace+".svc", "10.250.0.1")

	// url form
	objs = mustRender(t, akashValues+`  importCredentials: true
  webhook: {url: "https://10.250.0.1:8443"}
`)
	w = get[admissionregv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", akashName).Webhooks[0]
	if w.ClientConfig.Service != nil || *w.ClientConfig.URL != "https://10.250.0.1:8443/mutate-pods" {
		t.Errorf("url client config %+v", w.ClientConfig)
	}
	sec = get[corev1.Secret](t, objs, "Secret", akashName+"-webhook-tls")
	checkCert(t, sec.Data["tls.crt"], w.ClientConfig.CABundle, "10.250.0.1")
}

// No Role or ClusterRole of the chart lets the Akash controller read
// Secrets or write anything.
func TestAkashRBACNoSecrets(t *testing.T) {
	objs := mustRender(t, akashValues+"  importCredentials: true\n")
	for k, o := range objs {
		var rules []rbacv1.PolicyRule
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			rules = o.Rules
		case *rbacv1.Role:
			rules = o.Rules
		default:
			continue
		}
		if !strings.Contains(k, "akash") {
			continue
		}
		for _, r := range rules {
			if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") {
				t.Errorf("%s grants %v on %v", k, r.Verbs, r.Resources)
			}
			for _, v := range r.Verbs {
				if !slices.Contains([]string{"get", "list", "watch"}, v) {
					t.Errorf("%s grants %s", k, v)
				}
			}
		}
	}
}

func TestAkashInvalidValues(t *testing.T) {
	for _, c := range []struct{ values, want string }{
		{agentValues + "akash: {enabled: true}\nhub: {publicURL: https://hub.example.com}\n", "akash.cluster is required"},
		{agentValues + "akash: {enabled: true, cluster: c}\n", "akash.hubURL is required"},
		{agentValues + "akash: {enabled: true, cluster: c, hubURL: 'http://hub.example.com'}\n", "plain text"},
		{agentValues + "akash: {enabled: true, cluster: c, hubURL: 'https://h', apiServer: 'https://x'}\n", "akash.apiServer"},
		{agentValues + "akash: {enabled: true, cluster: c, hubURL: 'https://h', webhook: {url: 'http://x'}}\n", "url"},
		{agentValues + "akash: {enabled: true, cluster: c, hubURL: 'https://h', clustr: x}\n", "clustr"},
	} {
		_, err := render(t, c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %q: err %v, want one mentioning %q", c.values, err, c.want)
		}
	}
}

// checkCert verifies the PEM certificate against the PEM CA for each name
// (a DNS name or an IP address).
func checkCert(t *testing.T, certPEM, caPEM []byte, names ...string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("caBundle holds no certificate")
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		opts := x509.VerifyOptions{Roots: pool, DNSName: n}
		if ip := net.ParseIP(n); ip != nil {
			opts.DNSName = ""
			if err := cert.VerifyHostname(n); err != nil {
				t.Errorf("certificate not for %s: %v", n, err)
			}
		}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("certificate for %s: %v", n, err)
		}
	}
}
