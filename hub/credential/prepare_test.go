package credential

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// saJSON is a service-account key file with a freshly generated key;
// mutate edits its fields before encoding.
func saJSON(t testing.TB, mutate func(m map[string]any)) (string, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	m := map[string]any{
		"type": "service_account", "project_id": "my-project", "private_key_id": "0123456789abcdef",
		"private_key": keyPEM, "client_email": "puller@my-project.iam.gserviceaccount.com",
		"client_id": "123456789012345678901", "token_uri": "https://oauth2.googleapis.com/token",
	}
	if mutate != nil {
		mutate(m)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b), keyPEM
}

func ecKeyPEM(t testing.TB) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestInferAndCheckHost(t *testing.T) {
	for _, tc := range []struct{ host, kind string }{
		{ecrHost, KindECR},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", KindECR},
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", KindECR},
		{"123456789012.dkr-ecr.eu-west-1.on.aws", KindECR},
		{"myreg.azurecr.io", KindACR},
		{"myreg.azurecr.io/team", KindACR},
		{"gcr.io", KindGCP},
		{"eu.gcr.io/my-project", KindGCP},
		{"europe-west1-docker.pkg.dev", KindGCP},
		{"docker.io", KindBasic},
		{"ghcr.io/org", KindBasic},
		{"registry.gitlab.com", KindBasic},
		{"quay.io", KindBasic},
		{"public.ecr.aws", KindBasic},
		{"12345.dkr.ecr.us-east-1.amazonaws.com", KindBasic}, // not a 12-digit account
		{"evil.azurecr.io.example.com", KindBasic},
		{"a.b.gcr.io", KindBasic},
		{"127.0.0.1:5000", KindBasic},
	} {
		if got := InferKind(tc.host); got != tc.kind {
			t.Errorf("InferKind(%q) = %s, want %s", tc.host, got, tc.kind)
		}
		if tc.kind != KindBasic {
			if err := CheckHost(tc.kind, tc.host); err != nil {
				t.Errorf("CheckHost(%s, %q): %v", tc.kind, tc.host, err)
			}
		}
	}
	if acct, region, ok := ECRHost(ecrHost); !ok || acct != "123456789012" || region != "us-east-1" {
		t.Errorf("ECRHost: %s %s %v", acct, region, ok)
	}
	for _, tc := range []struct{ kind, host, want string }{
		{KindECR, "ghcr.io", "not an Amazon ECR registry"},
		{KindACR, "ghcr.io", "not an Azure Container Registry"},
		{KindGCP, "docker.io", "not a Google registry"},
		{KindBasic, ecrHost, "use kind ecr"},
		{KindToken, ecrHost, "use kind ecr"},
	} {
		if err := CheckHost(tc.kind, tc.host); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckHost(%s, %s) = %v, want %q", tc.kind, tc.host, err, tc.want)
		}
	}
}

func TestPrepare(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const secret = "SeCrEt-VALUE-0123456789abcdefghijklmn"
	sa, keyPEM := saJSON(t, nil)
	saB64 := base64.StdEncoding.EncodeToString([]byte(sa))
	expAt := now.Add(11 * time.Hour)
	expToken := base64.StdEncoding.EncodeToString([]byte(`{"payload":"x","datakey":"y","version":"2","type":"DATA_KEY","expiration":` +
		strconv.FormatInt(expAt.Unix(), 10) + `}`))
	dockerAuthForm := base64.StdEncoding.EncodeToString([]byte("AWS:" + expToken))
	const (
		tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		client = "11111111-2222-3333-4444-555555555555"
	)

	type want struct {
		kind, user, auth string
		check            func(t *testing.T, s Secret)
	}
	for _, tc := range []struct {
		name string
		in   Input
		want want
		err  string
	}{
		{"basic", Input{Host: "ghcr.io", Username: "bot", Password: secret}, want{kind: KindBasic, user: "bot", auth: AuthPassword}, ""},
		{"basic needs username", Input{Host: "ghcr.io", Password: secret}, want{}, "kind basic needs a username"},
		{"token without username", Input{Kind: KindToken, Host: "ghcr.io", Password: secret}, want{kind: KindToken, auth: AuthToken}, ""},
		{"empty password", Input{Host: "ghcr.io", Username: "u"}, want{}, "empty password"},
		{"huge password", Input{Host: "ghcr.io", Username: "u", Password: strings.Repeat("x", MaxSecretLen+1)}, want{}, "longer than"},
		{"unknown kind", Input{Kind: "nope", Host: "ghcr.io", Password: secret}, want{}, `kind "nope"`},
		{"basic on ecr host", Input{Kind: KindBasic, Host: ecrHost, Username: "AWS", Password: secret}, want{}, "use kind ecr"},
		{"ecr params on basic", Input{Host: "ghcr.io", Username: "u", Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE"}, want{}, "are for kind ecr"},
		{"acr params on basic", Input{Host: "ghcr.io", Username: "u", Password: secret, AzureTenantID: tenant}, want{}, "are for kind acr"},

		{"ecr keys inferred", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE"},
			want{KindECR, "AWS", AuthAWSKeys, func(t *testing.T, s Secret) {
				if s.AWS == nil || s.AWS.AccessKeyID != "AKIAIOSFODNN7EXAMPLE" || s.AWS.SecretAccessKey != secret || s.Password != "" {
					t.Errorf("secret %#v", s.AWS)
				}
			}}, ""},
		{"ecr role", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", AWSRoleARN: "arn:aws:iam::123456789012:role/puller", AWSExternalID: "ext-1", AWSRegion: "eu-west-1"},
			want{KindECR, "AWS", AuthAWSAssumeRole, func(t *testing.T, s Secret) {
				if s.AWS.RoleARN != "arn:aws:iam::123456789012:role/puller" || s.AWS.ExternalID != "ext-1" || s.AWS.Region != "eu-west-1" {
					t.Errorf("secret role fields")
				}
			}}, ""},
		{"ecr bad key id", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "akia-lower"}, want{}, "not an AWS access key id"},
		{"ecr bad role", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", AWSRoleARN: "puller"}, want{}, `role ARN "puller"`},
		{"ecr external without role", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", AWSExternalID: "x1"}, want{}, "external id needs a role"},
		{"ecr bad region", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", AWSRegion: "mars"}, want{}, `region "mars"`},
		{"ecr role without key", Input{Host: ecrHost, Password: secret, AWSRoleARN: "arn:aws:iam::123456789012:role/puller"}, want{}, "need an access key id"},
		{"ecr wrong username", Input{Host: ecrHost, Username: "bob", Password: secret}, want{}, "username is always AWS"},
		{"ecr expiry with keys", Input{Host: ecrHost, Password: secret, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", TokenExpiresAt: now.Add(time.Hour)}, want{}, "for pasted tokens"},
		{"ecr pasted token, default expiry", Input{Host: ecrHost, Username: "AWS", Password: secret},
			want{KindECR, "AWS", AuthECRToken, func(t *testing.T, s Secret) {
				if s.Password != secret || !s.ExpiresAt.Equal(now.Add(12*time.Hour)) {
					t.Errorf("pasted: expires %v", s.ExpiresAt)
				}
			}}, ""},
		{"ecr pasted token, expiry read from it", Input{Host: ecrHost, Password: expToken},
			want{KindECR, "AWS", AuthECRToken, func(t *testing.T, s Secret) {
				if !s.ExpiresAt.Equal(expAt) {
					t.Errorf("expiry from token: %v", s.ExpiresAt)
				}
			}}, ""},
		{"ecr docker auth form unwrapped", Input{Host: ecrHost, Password: dockerAuthForm},
			want{KindECR, "AWS", AuthECRToken, func(t *testing.T, s Secret) {
				if s.Password != expToken {
					t.Errorf("docker auth form not unwrapped")
				}
			}}, ""},
		{"ecr explicit expiry", Input{Host: ecrHost, Password: secret, TokenExpiresAt: now.Add(3 * time.Hour)},
			want{KindECR, "AWS", AuthECRToken, func(t *testing.T, s Secret) {
				if !s.ExpiresAt.Equal(now.Add(3 * time.Hour)) {
					t.Errorf("explicit expiry: %v", s.ExpiresAt)
				}
			}}, ""},
		{"ecr expired token", Input{Host: ecrHost, Password: secret, TokenExpiresAt: now.Add(-time.Minute)}, want{}, "expired at 2030-01-02T03:03:05Z"},
		{"ecr expiry too far", Input{Host: ecrHost, Password: secret, TokenExpiresAt: now.Add(30 * 24 * time.Hour)}, want{}, "more than"},
		{"ecr token with spaces", Input{Host: ecrHost, Password: "a b"}, want{}, "white space"},

		{"acr admin", Input{Host: "myreg.azurecr.io", Username: "myreg", Password: secret}, want{KindACR, "myreg", AuthPassword, nil}, ""},
		{"acr needs username or sp", Input{Host: "myreg.azurecr.io", Password: secret}, want{}, "kind acr needs a username"},
		{"acr sp", Input{Host: "myreg.azurecr.io", Password: secret, AzureTenantID: tenant, AzureClientID: strings.ToUpper(client)},
			want{KindACR, client, AuthServicePrinc, func(t *testing.T, s Secret) {
				if s.Azure == nil || s.Azure.TenantID != tenant || s.Azure.ClientID != client || s.Azure.ClientSecret != secret {
					t.Errorf("sp secret")
				}
			}}, ""},
		{"acr sp half", Input{Host: "myreg.azurecr.io", Password: secret, AzureTenantID: tenant}, want{}, "both a tenant id and a client id"},
		{"acr sp bad client", Input{Host: "myreg.azurecr.io", Password: secret, AzureTenantID: tenant, AzureClientID: "app"}, want{}, `client id "app"`},
		{"acr sp bad tenant", Input{Host: "myreg.azurecr.io", Password: secret, AzureTenantID: "-bad-", AzureClientID: client}, want{}, "tenant id"},
		{"acr sp with other username", Input{Host: "myreg.azurecr.io", Username: "x", Password: secret, AzureTenantID: tenant, AzureClientID: client}, want{}, "leave it empty"},
		{"acr on other host", Input{Kind: KindACR, Host: "ghcr.io", Username: "u", Password: secret}, want{}, "not an Azure Container Registry"},

		{"gcp json key", Input{Host: "gcr.io", Password: sa}, want{KindGCP, "_json_key", AuthJSONKey, nil}, ""},
		{"gcp json key base64", Input{Host: "europe-west1-docker.pkg.dev", Username: "_json_key_base64", Password: saB64}, want{KindGCP, "_json_key_base64", AuthJSONKeyBase64, nil}, ""},
		{"gcp oauth token", Input{Host: "gcr.io", Username: "oauth2accesstoken", Password: "ya29.token"}, want{KindGCP, "oauth2accesstoken", AuthOAuthToken, nil}, ""},
		{"gcp bad username", Input{Host: "gcr.io", Username: "bob", Password: sa}, want{}, `username "bob"`},
		{"gcp base64 not base64", Input{Host: "gcr.io", Username: "_json_key_base64", Password: "%%%"}, want{}, "not base64"},
		{"gcp base64 of bad json", Input{Host: "gcr.io", Username: "_json_key_base64", Password: base64.StdEncoding.EncodeToString([]byte(`{"type":"service_account"}`))}, want{}, "missing project_id"},
		{"gcp on docker hub", Input{Kind: KindGCP, Host: "docker.io", Password: sa}, want{}, "not a Google registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Prepare(tc.in, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				var ie *InputError
				if !errors.As(err, &ie) {
					t.Errorf("%T is not an InputError", err)
				}
				for _, s := range []string{secret, keyPEM, sa} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error carries the secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.want.kind || p.Username != tc.want.user {
				t.Errorf("kind %s user %q, want %s %q", p.Kind, p.Username, tc.want.kind, tc.want.user)
			}
			if err := Validate(p.Kind, p.Username, p.Secret); err != nil {
				t.Errorf("prepared secret does not validate: %v", err)
			}
			c := store.Credential{Name: "c", Kind: p.Kind, Username: p.Username}
			if info := Describe(c, p.Secret, now); info.Auth != tc.want.auth {
				t.Errorf("auth %s, want %s", info.Auth, tc.want.auth)
			}
			if tc.want.check != nil {
				tc.want.check(t, p.Secret)
			}
		})
	}
}

func TestServiceAccountJSON(t *testing.T) {
	good, keyPEM := saJSON(t, nil)
	if err := CheckServiceAccountJSON([]byte(good)); err != nil {
		t.Fatal(err)
	}
	k1, _ := rsa.GenerateKey(rand.Reader, 1024)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k1)}))
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		raw    string
		want   string
	}{
		{"pkcs1 rsa ok", set("private_key", pkcs1), "", ""},
		{"not json", nil, `{"type": "service_account",`, "not valid JSON"},
		{"syntax error offset", nil, `{"type" "x"}`, "error at byte 9"},
		{"array", nil, `["x"]`, "want a JSON object"},
		{"missing type", del("type"), "", "missing type"},
		{"user credential", set("type", "authorized_user"), "", `type is "authorized_user"`},
		{"missing project", del("project_id"), "", "missing project_id"},
		{"empty project", set("project_id", " "), "", "project_id is empty"},
		{"missing email", del("client_email"), "", "missing client_email"},
		{"email not email", set("client_email", "puller"), "", "not an email address"},
		{"email wrong type", set("client_email", 42), "", "client_email must be a string"},
		{"missing key", del("private_key"), "", "missing private_key"},
		{"null key", set("private_key", nil), "", "missing private_key"},
		{"key not pem", set("private_key", "MIIEvQIBADANBg"), "", "private_key is not a PEM block"},
		{"truncated key", set("private_key", "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA\n-----END PRIVATE KEY-----\n"), "", "does not parse"},
		{"ec key", set("private_key", ecKeyPEM(t)), "", "ECDSA key, want RSA"},
		{"certificate", set("private_key", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "", `PEM "CERTIFICATE" block`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == "" {
				raw, _ = saJSON(t, tc.mutate)
			}
			err := CheckServiceAccountJSON([]byte(raw))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "MIIE") || strings.Contains(err.Error(), keyPEM[40:80]) {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
}

func TestSealOpenKinds(t *testing.T) {
	sl := testSealer(t)
	c := store.Credential{WorkspaceID: "ws_1", Name: "c"}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []Secret{
		{Password: "pw"},
		{AWS: &AWSKeys{AccessKeyID: "AKIA", SecretAccessKey: "sk", RoleARN: "arn", ExternalID: "e", Region: "r"}},
		{Azure: &AzureSP{TenantID: "t", ClientID: "c", ClientSecret: "cs"}},
		{Password: "tok", ExpiresAt: exp},
	} {
		sealed, err := Seal(sl, c, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(sl, c, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if got.Password != s.Password || !got.ExpiresAt.Equal(s.ExpiresAt) ||
			(s.AWS != nil && (got.AWS == nil || *got.AWS != *s.AWS)) || (s.Azure != nil && (got.Azure == nil || *got.Azure != *s.Azure)) {
			t.Errorf("round trip of %d-field secret changed it", len(s.values()))
		}
	}
	// Version-1 secrets ({"password": ...}) still open.
	old, _ := sl.Seal([]byte(`{"password":"v1pw"}`), aad(c))
	if got, err := Open(sl, c, old); err != nil || got.Password != "v1pw" {
		t.Fatalf("v1 secret: %v", err)
	}
}

func TestSecretNeverFormats(t *testing.T) {
	s := Secret{Password: "pw-SECRET", AWS: &AWSKeys{AccessKeyID: "AKIAX", SecretAccessKey: "aws-SECRET"}, Azure: &AzureSP{ClientSecret: "az-SECRET"}}
	b, _ := json.Marshal(map[string]any{"s": s, "aws": s.AWS, "az": s.Azure, "awsv": *s.AWS})
	for _, out := range []string{string(b), fmtAll(s), fmtAll(*s.AWS), fmtAll(*s.Azure), fmtAll(s.AWS)} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("secret formatted: %s", out)
		}
	}
}

func TestRedact(t *testing.T) {
	sec := Secret{Password: "line1\nline2 \"quoted\"", AWS: &AWSKeys{SecretAccessKey: "aws/secret+key="}, Azure: &AzureSP{ClientSecret: "az~secret"}}
	in := "a line1\nline2 \"quoted\" b " + `line1\nline2 \"quoted\"` + " c aws%2Fsecret%2Bkey%3D d " + base64.StdEncoding.EncodeToString([]byte("az~secret")) + " e az~secret"
	out := Redact(in, sec)
	for _, s := range []string{"line1", "aws", "az~", base64.StdEncoding.EncodeToString([]byte("az~secret"))} {
		if strings.Contains(out, s) {
			t.Errorf("Redact left %q in %q", s, out)
		}
	}
}
