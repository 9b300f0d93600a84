package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testcloud"
	"github.com/pullgate/pullgate/internal/testupstream"
)

const (
	ecrTestHost  = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	awsKeyID     = "AKIAPULLGATEPROXY001"
	awsSecretKey = "aws-SECRET-proxy-wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
	ecrRegPass   = "ecr-REGISTRY-PASSWORD-proxy-test"
	acrTestHost  = "myreg.azurecr.io"
	azTenant     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	azClient     = "11111111-2222-3333-4444-555555555555"
	azSecret     = "az-SECRET-proxy-Qx8Q~abcdefghijklmnop"
)

// storeCredential stores c with secret sec in the workspace, allowed the
// private network its loopback test upstream is on.
func (f *fixture) storeCredential(ws store.Workspace, c store.Credential, sec credential.Secret) store.Credential {
	f.t.Helper()
	c.WorkspaceID, c.Enabled, c.AllowPrivateNetwork = ws.ID, true, true
	sealed, err := credential.Seal(f.sealer, c, sec)
	if err != nil {
		f.t.Fatal(err)
	}
	c, err = f.store.CreateCredential(context.Background(), ws.Name, c, sealed)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// assertNoSecret fails when any of secrets shows up in the hub's log or in
// a client-visible body.
func (f *fixture) assertNoSecret(bodies []string, secrets ...string) {
	f.t.Helper()
	for _, s := range secrets {
		if strings.Contains(f.logs.String(), s) {
			f.t.Errorf("hub log contains a secret")
		}
		for _, b := range bodies {
			if strings.Contains(b, s) {
				f.t.Errorf("client response contains a secret: %s", b)
			}
		}
	}
}

// An ECR credential with AWS keys: the hub gets the registry token from
// (a wire-level fake of) the ECR API itself, once for many concurrent
// pulls of several repositories, and pulls from a real registry that
// accepts only that token.
func TestECRPullThroughHub(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", awsKeyID, awsSecretKey, ecrRegPass, 0)
	aws.SetDelay(30 * time.Millisecond)
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("AWS", ecrRegPass))
	want := map[string]string{}
	for _, repo := range []string{"team/app", "team/db"} {
		img := up.PushRandomImage(t, repo, "v1", 2, 1024)
		d, _ := img.Digest()
		want[repo] = d.String()
	}
	up.ResetLog()
	src := credential.NewSource(credential.WithECREndpoint(aws.URL))
	f := newFixture(t, WithCredentialSource(src))
	ws := f.workspace("acme")
	f.storeCredential(ws, store.Credential{Name: "ecr-prod", Host: ecrTestHost, Endpoint: up.URL, Kind: credential.KindECR, Username: "AWS"},
		credential.Secret{AWS: &credential.AWSKeys{AccessKeyID: awsKeyID, SecretAccessKey: awsSecretKey}})
	f.install(ws, "web", ecrTestHost+"/team/*")
	tok := f.token(ws, "web", time.Minute)

	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := []string{"team/app", "team/db"}[i%2]
			img, err := f.pull(f.ref(ecrTestHost, repo, "v1"), tok)
			if err != nil {
				t.Errorf("pull %s: %v", repo, err)
				return
			}
			if d, _ := img.Digest(); d.String() != want[repo] {
				t.Errorf("pull %s: digest %s, want %s", repo, d, want[repo])
			}
		}()
	}
	wg.Wait()
	if n := aws.ECRCalls(); n != 1 {
		t.Fatalf("%d GetAuthorizationToken calls for 12 concurrent pulls of 2 repositories, want 1", n)
	}
	c := aws.Calls()[0]
	if !c.Signed || !c.SignatureOK || c.AccessKeyID != awsKeyID || c.Target != testcloud.ECRTarget {
		t.Fatalf("ECR API call %+v", c)
	}
	for _, r := range up.Log() {
		if r.Path == "/v2/" && !r.Authorization {
			continue // the ping
		}
		if r.AuthScheme != "Basic" || r.Status >= 400 {
			t.Fatalf("upstream saw %+v", r)
		}
	}
	// The token's proxyEndpoint (attacker.example) was never contacted:
	// every upstream request went to the configured endpoint.
	if f.net.n.Load() == 0 || up.Requests() == 0 {
		t.Fatal("no upstream traffic")
	}
	f.assertNoSecret(nil, awsSecretKey, ecrRegPass, aws.Tokens()[0])

	// AWS refusing the keys: a clear 502 to the client, AWS's reason in the
	// log, no secret anywhere.
	aws.SetFail("denied")
	f2 := newFixture(t, WithCredentialSource(credential.NewSource(credential.WithECREndpoint(aws.URL))))
	ws2 := f2.workspace("acme")
	f2.storeCredential(ws2, store.Credential{Name: "ecr-prod", Host: ecrTestHost, Endpoint: up.URL, Kind: credential.KindECR, Username: "AWS"},
		credential.Secret{AWS: &credential.AWSKeys{AccessKeyID: awsKeyID, SecretAccessKey: awsSecretKey}})
	f2.install(ws2, "web")
	resp := f2.get(http.MethodGet, "/v2/"+ecrTestHost+"/team/app/manifests/v1", f2.token(ws2, "web", time.Minute))
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "registry credential ecr-prod could not obtain a token") {
		t.Fatalf("denied keys: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(f2.logs.String(), "UnrecognizedClientException") {
		t.Errorf("log lacks AWS's reason:\n%s", f2.logs.String())
	}
	f2.assertNoSecret([]string{body}, awsSecretKey, ecrRegPass)
}

// A pasted ECR token works until its expiry, then the proxy refuses with a
// message that says so, without sending the dead token upstream.
func TestPastedECRTokenThroughHub(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("AWS", ecrRegPass))
	up.PushRandomImage(t, "team/app", "v1", 1, 256)
	f := newFixture(t)
	ws := f.workspace("acme")
	exp := time.Now().Add(time.Hour)
	f.storeCredential(ws, store.Credential{Name: "ecr-pasted", Host: ecrTestHost, Endpoint: up.URL, Kind: credential.KindECR, Username: "AWS"},
		credential.Secret{Password: ecrRegPass, ExpiresAt: exp})
	f.install(ws, "web")
	tok := f.token(ws, "web", 3*time.Hour)
	if _, err := f.pull(f.ref(ecrTestHost, "team/app", "v1"), tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Store(exp.Add(time.Minute).UnixNano())
	f2 := newFixture(t, WithCredentialSource(credential.NewSource(credential.WithSourceClock(f.now))))
	ws2 := f2.workspace("acme")
	f2.storeCredential(ws2, store.Credential{Name: "ecr-pasted", Host: ecrTestHost, Endpoint: up.URL, Kind: credential.KindECR, Username: "AWS"},
		credential.Secret{Password: ecrRegPass, ExpiresAt: exp})
	f2.install(ws2, "web")
	up.ResetLog()
	resp := f2.get(http.MethodGet, "/v2/"+ecrTestHost+"/team/app/manifests/v1", f2.token(ws2, "web", time.Minute))
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "pasted ECR token expired at") {
		t.Fatalf("expired token: %d %s", resp.StatusCode, body)
	}
	for _, r := range up.Log() {
		if r.Authorization {
			t.Fatalf("expired token sent upstream: %+v", r)
		}
	}
	f2.assertNoSecret([]string{body}, ecrRegPass)
}

// An ACR credential with a service principal: Entra ID token, ACR
// exchange for a refresh token, then the registry's own token endpoint
// for per-repository access tokens, and the pull from the real registry.
func TestACRPullThroughHub(t *testing.T) {
	aad := testcloud.StartEntraID(t, azTenant, azClient, azSecret)
	front := testcloud.StartACR(t, acrTestHost, aad, 0)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("acr-internal", "acr-internal-SECRET"), testupstream.WithRealm(front.Realm()))
	front.Back(up.URL, up.User, up.Password)
	want := map[string]string{}
	for _, repo := range []string{"team/app", "team/db"} {
		d, _ := front.PushRandomImage(t, repo, "v1").Digest()
		want[repo] = d.String()
	}
	src := credential.NewSource(credential.WithAzureAuthority(aad.URL))
	f := newFixture(t, WithCredentialSource(src))
	ws := f.workspace("acme")
	f.storeCredential(ws, store.Credential{Name: "acr", Host: acrTestHost, Endpoint: front.URL, Kind: credential.KindACR, Username: azClient},
		credential.Secret{Azure: &credential.AzureSP{TenantID: azTenant, ClientID: azClient, ClientSecret: azSecret}})
	f.install(ws, "web", acrTestHost+"/team/*")
	tok := f.token(ws, "web", time.Minute)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := []string{"team/app", "team/db"}[i%2]
			img, err := f.pull(f.ref(acrTestHost, repo, "v1"), tok)
			if err != nil {
				t.Errorf("pull %s: %v", repo, err)
				return
			}
			if d, _ := img.Digest(); d.String() != want[repo] {
				t.Errorf("digest of %s", repo)
			}
		}()
	}
	wg.Wait()
	if aad.Calls() != 1 || front.Exchanges() != 1 {
		t.Fatalf("%d Entra ID calls and %d exchanges for 8 pulls, want 1 each", aad.Calls(), front.Exchanges())
	}
	if n := front.TokenRequests(); n != 2 {
		t.Fatalf("%d ACR access-token requests for 8 pulls of 2 repositories, want one per repository", n)
	}
	f.assertNoSecret(nil, azSecret, up.Password)
}

// Docker Hub's ratelimit-* headers become gauges per upstream, workspace
// and credential name; a 429 still reaches the client with Retry-After.
func TestRateLimitHeadersRecorded(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("bot", "rl-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 128)
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	remaining, limited := 76, false
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		rem, lim := remaining, limited
		mu.Unlock()
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("RateLimit-Limit", "100;w=21600")
			w.Header().Set("RateLimit-Remaining", itoa(rem)+";w=21600")
			if lim {
				w.Header().Set("Retry-After", "3600")
				http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, http.StatusTooManyRequests)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	m := metrics.New()
	f := newFixture(t, WithMetrics(m))
	ws := f.workspace("acme")
	f.storeCredential(ws, store.Credential{Name: "hub", Host: "docker.io", Endpoint: front.URL, Kind: credential.KindBasic, Username: "bot"},
		credential.Secret{Password: "rl-SECRET"})
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Minute)
	resp := f.get(http.MethodGet, "/v2/docker.io/org/app/manifests/v1", tok, "Accept", "application/vnd.docker.distribution.manifest.v2+json")
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if v := gaugeValue(m.RateLimitLimit.WithLabelValues("docker.io", "acme", "hub")); v != 100 {
		t.Errorf("limit gauge %v", v)
	}
	if v := gaugeValue(m.RateLimitRemaining.WithLabelValues("docker.io", "acme", "hub")); v != 76 {
		t.Errorf("remaining gauge %v", v)
	}
	if v := gaugeValue(m.RateLimitWindow.WithLabelValues("docker.io", "acme", "hub")); v != 21600 {
		t.Errorf("window gauge %v", v)
	}
	mu.Lock()
	remaining, limited = 0, true
	mu.Unlock()
	resp = f.get(http.MethodGet, "/v2/docker.io/org/app/manifests/v1", tok)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3600" || !strings.Contains(body, "TOOMANYREQUESTS") {
		t.Fatalf("429: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if v := gaugeValue(m.RateLimitRemaining.WithLabelValues("docker.io", "acme", "hub")); v != 0 {
		t.Errorf("remaining after 429: %v", v)
	}
	exposition, _ := m.Registry.Gather()
	for _, mf := range exposition {
		if strings.Contains(mf.String(), "rl-SECRET") {
			t.Fatal("secret in metrics")
		}
	}
	for _, tc := range []struct {
		in        string
		n, window float64
		ok        bool
	}{{"100;w=21600", 100, 21600, true}, {"76", 76, 0, true}, {" 5 ; w=60", 5, 60, true}, {"", 0, 0, false}, {"abc", 0, 0, false}, {"-1;w=1", 0, 0, false}} {
		n, w, ok := parseRateLimit(tc.in)
		if n != tc.n || w != tc.window || ok != tc.ok {
			t.Errorf("parseRateLimit(%q) = %v %v %v", tc.in, n, w, ok)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
