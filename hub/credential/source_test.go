package credential

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/upstream"
	"github.com/pullgate/pullgate/internal/testcloud"
	"github.com/pullgate/pullgate/internal/testupstream"
)

const (
	testKeyID   = "AKIAPULLGATETEST0001"
	testSecret  = "aws-SECRET-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegPass = "ecr-REGISTRY-PASSWORD-eyJwYXlsb2FkIjoi"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func ecrCred(endpoint string, version int) store.Credential {
	return store.Credential{ID: "cred_ecr", WorkspaceID: "ws_1", Name: "ecr-prod", Host: ecrHost, Endpoint: endpoint,
		Kind: KindECR, Username: "AWS", Enabled: true, Version: version, AllowPrivateNetwork: true} // loopback test upstream
}

func ecrSecret() Secret {
	return Secret{AWS: &AWSKeys{AccessKeyID: testKeyID, SecretAccessKey: testSecret}}
}

func TestECRTokenFromAWSKeys(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 12*time.Hour)
	clk := newClock()
	src := NewSource(WithECREndpoint(aws.URL), WithSourceClock(clk.Now))
	ctx := context.Background()

	auth, err := src.Authenticator(ctx, ecrCred("", 1), ecrSecret())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.Authorization()
	if err != nil || cfg.Username != "AWS" || cfg.Password != testRegPass {
		t.Fatalf("authorization %+v %v", cfg, err)
	}
	calls := aws.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d AWS calls", len(calls))
	}
	c := calls[0]
	if c.Target != testcloud.ECRTarget || !strings.HasPrefix(c.ContentType, "application/x-amz-json-1.1") ||
		!c.Signed || !c.SignatureOK || c.AccessKeyID != testKeyID || c.Status != 200 {
		t.Fatalf("ECR call %+v", c)
	}

	// Cached: no second call, and a new version is a new fetch that drops
	// the old version.
	for range 5 {
		if _, err := src.Authenticator(ctx, ecrCred("", 1), ecrSecret()); err != nil {
			t.Fatal(err)
		}
	}
	if aws.ECRCalls() != 1 {
		t.Fatalf("%d ECR calls, want the token cached", aws.ECRCalls())
	}
	if _, err := src.Authenticator(ctx, ecrCred("", 2), ecrSecret()); err != nil {
		t.Fatal(err)
	}
	if aws.ECRCalls() != 2 {
		t.Fatal("a new secret version reused the old token")
	}
	src.mu.Lock()
	n := len(src.cache)
	src.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d cache entries, want the old version dropped", n)
	}
}

func TestECRRefreshIsSharedAndEarly(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 12*time.Hour)
	aws.SetDelay(50 * time.Millisecond)
	clk := newClock()
	src := NewSource(WithECREndpoint(aws.URL), WithSourceClock(clk.Now))
	c, sec := ecrCred("", 1), ecrSecret()

	// 64 concurrent first pulls share one GetAuthorizationToken.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || aws.ECRCalls() != 1 {
		t.Fatalf("%d failures, %d ECR calls for 64 concurrent first uses, want 1", failed.Load(), aws.ECRCalls())
	}

	// 8h in: still the first token, no call.
	clk.Add(8 * time.Hour)
	src.Authenticator(context.Background(), c, sec)
	if aws.ECRCalls() != 1 {
		t.Fatal("renewed too early")
	}
	// 9h30 in (a quarter of life left): the old token is handed out at once
	// and one background renewal runs, however many pulls ask.
	clk.Add(90 * time.Minute)
	aws.SetPassword(testRegPass + "-2")
	for range 20 {
		a, err := src.Authenticator(context.Background(), c, sec)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, _ := a.Authorization(); cfg.Password != testRegPass && cfg.Password != testRegPass+"-2" {
			t.Fatalf("unexpected password")
		}
	}
	waitFor(t, func() bool { return aws.ECRCalls() == 2 })
	waitFor(t, func() bool {
		a, _ := src.Authenticator(context.Background(), c, sec)
		cfg, _ := a.Authorization()
		return cfg.Password == testRegPass+"-2"
	})
	time.Sleep(100 * time.Millisecond)
	if aws.ECRCalls() != 2 {
		t.Fatalf("%d ECR calls, want one background renewal", aws.ECRCalls())
	}
}

func TestECRRenewalFailureKeepsValidToken(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 12*time.Hour)
	clk := newClock()
	src := NewSource(WithECREndpoint(aws.URL), WithSourceClock(clk.Now))
	c, sec := ecrCred("", 1), ecrSecret()
	if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
		t.Fatal(err)
	}
	aws.SetFail("5xx")
	clk.Add(10 * time.Hour)
	if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
		t.Fatalf("valid token refused while AWS fails: %v", err)
	}
	waitFor(t, func() bool { return aws.ECRCalls() >= 2 })
	// Retried at most once a minute.
	for range 5 {
		src.Authenticator(context.Background(), c, sec)
	}
	time.Sleep(50 * time.Millisecond)
	if n := aws.ECRCalls(); n > 3 {
		t.Fatalf("%d ECR calls: failed renewals not rate-limited", n)
	}
	// Past the hard expiry the failure reaches the caller.
	clk.Add(2*time.Hour - 30*time.Second)
	_, err := src.Authenticator(context.Background(), c, sec)
	var ce *Error
	if !errors.As(err, &ce) || !ce.Temporary || !strings.Contains(err.Error(), "ServerException") {
		t.Fatalf("err %v", err)
	}
}

func TestECRErrors(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 0)
	for _, tc := range []struct {
		mode      string
		sec       Secret
		want      string
		temporary bool
	}{
		{"denied", ecrSecret(), "UnrecognizedClientException", false},
		{"throttle", ecrSecret(), "ThrottlingException", true},
		{"empty", ecrSecret(), "returned no token", true},
		{"", Secret{AWS: &AWSKeys{AccessKeyID: testKeyID, SecretAccessKey: "wrong-" + testSecret}}, "SignatureDoesNotMatch", false},
		{"", Secret{AWS: &AWSKeys{AccessKeyID: "AKIAUNKNOWNKEY000000", SecretAccessKey: testSecret}}, "SignatureDoesNotMatch", false},
	} {
		t.Run(tc.mode+tc.want, func(t *testing.T) {
			aws.SetFail(tc.mode)
			src := NewSource(WithECREndpoint(aws.URL))
			_, err := src.Authenticator(context.Background(), ecrCred("", 1), tc.sec)
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || ce.Temporary != tc.temporary {
				t.Fatalf("err %v (temporary %v), want %q temporary %v", err, ce != nil && ce.Temporary, tc.want, tc.temporary)
			}
			if !strings.Contains(err.Error(), "registry credential ecr-prod") {
				t.Errorf("error does not name the credential: %v", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error carries the secret key: %v", err)
			}
		})
	}
}

func TestECRAssumeRole(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 0)
	const role = "arn:aws:iam::123456789012:role/ecr-puller"
	aws.AllowRole(role, "ext-42")
	src := NewSource(WithECREndpoint(aws.URL), WithSTSEndpoint(aws.URL))
	sec := ecrSecret()
	sec.AWS.RoleARN, sec.AWS.ExternalID = role, "ext-42"
	a, err := src.Authenticator(context.Background(), ecrCred("", 1), sec)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := a.Authorization(); cfg.Password != testRegPass {
		t.Fatal("wrong token")
	}
	calls := aws.Calls()
	if len(calls) != 2 || calls[0].Service != "sts" || calls[0].Action != "AssumeRole" || calls[0].AccessKeyID != testKeyID ||
		!calls[0].SignatureOK || calls[0].RoleARN != role || calls[0].ExternalID != "ext-42" || calls[0].SessionName != roleSessionName {
		t.Fatalf("STS call %+v", calls)
	}
	if calls[1].Service != "ecr" || !strings.HasPrefix(calls[1].AccessKeyID, "ASIA") || !calls[1].SignatureOK {
		t.Fatalf("ECR call not signed with the role's credentials: %+v", calls[1])
	}
	// A role the keys may not assume.
	sec.AWS.RoleARN = "arn:aws:iam::123456789012:role/other"
	_, err = NewSource(WithECREndpoint(aws.URL), WithSTSEndpoint(aws.URL)).Authenticator(context.Background(), ecrCred("", 1), sec)
	if err == nil || !strings.Contains(err.Error(), "AssumeRole") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err %v", err)
	}
}

func TestPastedECRTokenExpiry(t *testing.T) {
	clk := newClock()
	src := NewSource(WithSourceClock(clk.Now))
	c := ecrCred("", 1)
	sec := Secret{Password: "pasted-token", ExpiresAt: clk.Now().Add(time.Hour)}
	a, err := src.Authenticator(context.Background(), c, sec)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := a.Authorization(); cfg.Username != "AWS" || cfg.Password != "pasted-token" {
		t.Fatal("pasted token not presented as AWS:<token>")
	}
	clk.Add(time.Hour)
	_, err = src.Authenticator(context.Background(), c, sec)
	if err == nil || !strings.Contains(err.Error(), "pasted ECR token expired at") || strings.Contains(err.Error(), "pasted-token") {
		t.Fatalf("err %v", err)
	}
	info := Describe(c, sec, clk.Now())
	if info.Auth != AuthECRToken || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "expired") {
		t.Fatalf("info %+v", info)
	}
}

const (
	tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "11111111-2222-3333-4444-555555555555"
	spSecret = "az-SECRET-Qx8Q~abcdefghijklmnopqrstuvwxyz0123"
	acrName  = "myreg.azurecr.io"
)

// startACR is a real registry behind the fake ACR token service.
func startACR(t testing.TB) (*testcloud.EntraID, *testcloud.ACR, *testupstream.Registry) {
	aad := testcloud.StartEntraID(t, tenantID, clientID, spSecret)
	front := testcloud.StartACR(t, acrName, aad, 0)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("acr-internal", "acr-internal-pw"), testupstream.WithRealm(front.Realm()))
	front.Back(up.URL, up.User, up.Password)
	return aad, front, up
}

func acrCred(endpoint string) (store.Credential, Secret) {
	return store.Credential{ID: "cred_acr", WorkspaceID: "ws_1", Name: "acr", Host: acrName, Endpoint: endpoint, Kind: KindACR,
			Username: clientID, Enabled: true, Version: 1, AllowPrivateNetwork: true},
		Secret{Azure: &AzureSP{TenantID: tenantID, ClientID: clientID, ClientSecret: spSecret}}
}

func TestACRServicePrincipal(t *testing.T) {
	aad, front, _ := startACR(t)
	front.PushRandomImage(t, "team/app", "v1")
	src := NewSource(WithAzureAuthority(aad.URL))
	c, sec := acrCred(front.URL)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if aad.Calls() != 1 || front.Exchanges() != 1 {
		t.Fatalf("%d Entra ID calls, %d exchanges for 16 concurrent uses, want 1 each", aad.Calls(), front.Exchanges())
	}
	a, _ := src.Authenticator(context.Background(), c, sec)
	cfg, _ := a.Authorization()
	if cfg.Username != acrExchangeUser || cfg.IdentityToken == "" || cfg.Password != "" {
		t.Fatalf("acr login %+v", cfg)
	}

	// registry test: the whole chain, through to listing tags on the real
	// registry with a token from its own token endpoint.
	res := src.Check(context.Background(), upstream.NewPool(), c, sec, "team/app")
	if !res.Reachable || !res.Authenticated || !res.CanPull || !res.TokenObtained || res.Kind != KindACR ||
		res.Auth != AuthServicePrinc || res.ExpiresAt == nil || res.Error != "" || !strings.Contains(res.TokenSource, "Entra ID") {
		t.Fatalf("check %+v", res)
	}
	if aad.Calls() != 2 {
		t.Fatalf("registry test used the cache (%d Entra ID calls)", aad.Calls())
	}

	// Without the private-network allowance the exchange never reaches a
	// registry on loopback.
	private := c
	private.ID, private.AllowPrivateNetwork = "cred_acr_public", false
	before := front.Exchanges()
	if _, err := NewSource(WithAzureAuthority(aad.URL)).Authenticator(context.Background(), private, sec); err == nil ||
		!strings.Contains(err.Error(), "special-purpose address") || front.Exchanges() != before {
		t.Fatalf("exchange with a loopback registry without the allowance: %v (%d exchanges)", err, front.Exchanges()-before)
	}

	// A wrong client secret: Entra ID's own error, without the secret.
	sec.Azure.ClientSecret = "wrong-" + spSecret
	res = NewSource(WithAzureAuthority(aad.URL)).Check(context.Background(), upstream.NewPool(), c, sec, "team/app")
	if res.Authenticated || res.TokenObtained || !strings.Contains(res.Error, "invalid_client") || !strings.Contains(res.Error, "AADSTS7000215") ||
		strings.Contains(res.Error, spSecret) {
		t.Fatalf("check with wrong secret %+v", res)
	}
}

func TestCheckPerKind(t *testing.T) {
	aws := testcloud.StartAWS(t, "us-east-1", testKeyID, testSecret, testRegPass, 0)
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("AWS", testRegPass))
	up.PushRandomImage(t, "team/app", "v1", 1, 128)
	src := NewSource(WithECREndpoint(aws.URL))
	pool := upstream.NewPool()
	ctx := context.Background()

	res := src.Check(ctx, pool, ecrCred(up.URL, 1), ecrSecret(), "team/app")
	if !res.Authenticated || !res.CanPull || !res.TokenObtained || res.Kind != KindECR || res.Auth != AuthAWSKeys || res.ExpiresAt == nil {
		t.Fatalf("ecr keys %+v", res)
	}
	aws.SetFail("denied")
	res = src.Check(ctx, pool, ecrCred(up.URL, 1), ecrSecret(), "team/app")
	if res.Authenticated || !strings.HasPrefix(res.Error, "obtain token: ") || !strings.Contains(res.Error, "UnrecognizedClientException") || res.Upstream == "" {
		t.Fatalf("ecr denied %+v", res)
	}
	// A pasted token: authenticates as AWS:<token>; expiry and warning shown.
	exp := time.Now().Add(2 * time.Hour)
	res = src.Check(ctx, pool, ecrCred(up.URL, 1), Secret{Password: testRegPass, ExpiresAt: exp}, "team/app")
	if !res.Authenticated || !res.CanPull || res.Auth != AuthECRToken || res.ExpiresAt == nil || len(res.Warnings) != 1 || res.TokenSource != "" {
		t.Fatalf("ecr pasted %+v", res)
	}
	res = src.Check(ctx, pool, ecrCred(up.URL, 1), Secret{Password: testRegPass, ExpiresAt: time.Now().Add(-time.Second)}, "team/app")
	if res.Authenticated || !strings.Contains(res.Error, "expired") {
		t.Fatalf("ecr expired %+v", res)
	}
	// A wrong password echoed by a careless upstream is redacted.
	res = src.Check(ctx, pool, store.Credential{ID: "b", Name: "b", Host: "registry.test", Endpoint: up.URL, Kind: KindBasic, Username: "AWS", Version: 1, AllowPrivateNetwork: true},
		Secret{Password: "wrong-" + testRegPass}, "")
	if res.Authenticated || res.Kind != KindBasic || res.Auth != AuthPassword {
		t.Fatalf("basic wrong %+v", res)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkECRTokenShared measures the proxy's per-connection call for an
// ECR credential with AWS keys: the cached path (what nearly every pull
// takes) and, reported as fetches/op, how many GetAuthorizationToken calls
// a burst of 256 concurrent cold pulls costs.
func BenchmarkECRTokenShared(b *testing.B) {
	aws := testcloud.StartAWS(b, "us-east-1", testKeyID, testSecret, testRegPass, 0)
	aws.SetDelay(20 * time.Millisecond) // an AWS round trip
	b.Run("cached", func(b *testing.B) {
		src := NewSource(WithECREndpoint(aws.URL))
		c, sec := ecrCred("", 1), ecrSecret()
		if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("cold-burst-256", func(b *testing.B) {
		var fetches int64
		for i := 0; i < b.N; i++ {
			src := NewSource(WithECREndpoint(aws.URL))
			c, sec := ecrCred("", i+1), ecrSecret()
			var wg sync.WaitGroup
			for range 256 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := src.Authenticator(context.Background(), c, sec); err != nil {
						panic(fmt.Sprint(err))
					}
				}()
			}
			wg.Wait()
			fetches += src.Fetches()
		}
		b.ReportMetric(float64(fetches)/float64(b.N), "fetches/op")
	})
}
