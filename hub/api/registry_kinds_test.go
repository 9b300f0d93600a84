package api

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

const (
	ecrHost  = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	awsKeyID = "AKIAPULLGATEAPI00001"
	tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "11111111-2222-3333-4444-555555555555"
)

// serviceAccountJSON is a key file with a fresh RSA key, edited by mutate.
func serviceAccountJSON(t *testing.T, mutate func(map[string]any)) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	m := map[string]any{"type": "service_account", "project_id": "p1", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "puller@p1.iam.gserviceaccount.com", "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
	if mutate != nil {
		mutate(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (e *testEnv) lastCheckSecret() (string, string, string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.checks[len(e.checks)-1]
	switch {
	case c.secret.AWS != nil:
		return "aws", c.secret.AWS.AccessKeyID, c.secret.AWS.SecretAccessKey
	case c.secret.Azure != nil:
		return "azure", c.secret.Azure.TenantID, c.secret.Azure.ClientSecret
	}
	return "password", "", c.secret.Password
}

func TestRegistryKinds(t *testing.T) {
	e := newEnv(t)
	awsSecret, awsSecret2, spSecret, pasted := distinctiveSecret(), distinctiveSecret(), distinctiveSecret(), distinctiveSecret()
	sa := serviceAccountJSON(t, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	const regs = "/api/v1/workspaces/acme/registries"

	// ECR with AWS keys; the kind is inferred from the host.
	var reg Registry
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "ecr", Host: "https://" + ecrHost, Password: Password(awsSecret),
		ECR: &ECRParams{AccessKeyID: awsKeyID, RoleARN: "arn:aws:iam::123456789012:role/puller"}}), 201, &reg)
	if reg.Kind != "ecr" || reg.Username != "AWS" || reg.Host != ecrHost || reg.Auth != "aws_assume_role" || reg.ExpiresAt != nil || reg.Version != 1 {
		t.Fatalf("ecr keys: %+v", reg)
	}
	e.must("POST", regs+"/ecr/test", "", 200, nil)
	if kind, id, sec := e.lastCheckSecret(); kind != "aws" || id != awsKeyID || sec != awsSecret {
		t.Fatalf("sealed ecr secret: %s %s", kind, id)
	}
	// Rotating the secret key alone keeps the key id and role.
	e.must("PATCH", regs+"/ecr", jsonBody(t, UpdateRegistryRequest{Password: ptr(Password(awsSecret2))}), 200, &reg)
	if reg.Version != 2 || reg.Auth != "aws_assume_role" {
		t.Fatalf("rotate: %+v", reg)
	}
	e.must("POST", regs+"/ecr/test", "", 200, nil)
	if _, id, sec := e.lastCheckSecret(); id != awsKeyID || sec != awsSecret2 {
		t.Fatal("rotation lost the key id or kept the old secret")
	}

	// A pasted ECR token: expiry shown and warned about, in every view.
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "ecr-pasted", Host: ecrHost + "/team", Username: "AWS", Password: Password(pasted)}), 201, &reg)
	wantExp := e.now.Add(12 * time.Hour)
	if reg.Auth != "ecr_token" || reg.ExpiresAt == nil || !reg.ExpiresAt.Equal(wantExp) || len(reg.Warnings) != 1 || !strings.Contains(reg.Warnings[0], "expires at") {
		t.Fatalf("pasted: %+v", reg)
	}
	var got Registry
	e.must("GET", regs+"/ecr-pasted", "", 200, &got)
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(wantExp) || len(got.Warnings) != 1 {
		t.Fatalf("get pasted: %+v", got)
	}
	e.now = e.now.Add(13 * time.Hour)
	var list RegistryList
	e.must("GET", regs, "", 200, &list)
	for _, r := range list.Registries {
		if r.Name == "ecr-pasted" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "expired")) {
			t.Fatalf("list after expiry: %+v", r)
		}
	}
	// A new token with an explicit expiry.
	exp := e.now.Add(2 * time.Hour)
	e.must("PATCH", regs+"/ecr-pasted", jsonBody(t, UpdateRegistryRequest{Password: ptr(Password(pasted + "2")), ECR: &ECRParams{TokenExpiresAt: &exp}}), 200, &reg)
	if reg.Version != 2 || reg.ExpiresAt == nil || !reg.ExpiresAt.Equal(exp) {
		t.Fatalf("new pasted token: %+v", reg)
	}

	// ACR with a service principal; rotating the client secret keeps the rest.
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "acr", Host: "myreg.azurecr.io", Password: Password(spSecret),
		ACR: &ACRParams{TenantID: tenant, ClientID: clientID}}), 201, &reg)
	if reg.Kind != "acr" || reg.Username != clientID || reg.Auth != "service_principal" {
		t.Fatalf("acr: %+v", reg)
	}
	e.must("PATCH", regs+"/acr", jsonBody(t, UpdateRegistryRequest{Password: ptr(Password(spSecret + "x"))}), 200, &reg)
	e.must("POST", regs+"/acr/test", "", 200, nil)
	if kind, ten, sec := e.lastCheckSecret(); kind != "azure" || ten != tenant || sec != spSecret+"x" || reg.Version != 2 || reg.Username != clientID {
		t.Fatalf("acr rotate: %+v", reg)
	}
	// ACR admin user.
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "acr-admin", Host: "myreg.azurecr.io/team", Username: "myreg", Password: Password(spSecret)}), 201, &reg)
	if reg.Kind != "acr" || reg.Auth != "password" {
		t.Fatalf("acr admin: %+v", reg)
	}

	// GCP service-account key, kind and username inferred.
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "gcr", Host: "eu.gcr.io", Password: Password(sa)}), 201, &reg)
	if reg.Kind != "gcp" || reg.Username != "_json_key" || reg.Auth != "json_key" {
		t.Fatalf("gcp: %+v", reg)
	}
	// Switching to an OAuth2 access token needs the new password.
	e.must("PATCH", regs+"/gcr", `{"username":"oauth2accesstoken"}`, 400, nil)
	e.must("PATCH", regs+"/gcr", `{"username":"oauth2accesstoken","password":"ya29.abc"}`, 200, &reg)
	if reg.Username != "oauth2accesstoken" || reg.Auth != "oauth2_access_token" || len(reg.Warnings) != 1 || reg.Version != 2 {
		t.Fatalf("gcp oauth: %+v", reg)
	}

	for _, s := range []string{awsSecret, awsSecret2, spSecret, pasted, sa[strings.Index(sa, "MII") : strings.Index(sa, "MII")+60]} {
		e.assertNoLeak(s)
	}
}

func TestRegistryKindsBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	pw := distinctiveSecret()
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	const regs = "/api/v1/workspaces/acme/registries"
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "ecr", Host: ecrHost, Password: Password(pw), ECR: &ECRParams{AccessKeyID: awsKeyID}}), 201, nil)
	e.must("POST", regs, jsonBody(t, CreateRegistryRequest{Name: "gcr", Host: "gcr.io", Password: Password(serviceAccountJSON(t, nil))}), 201, nil)
	bad := func(mutate func(map[string]any)) string { return serviceAccountJSON(t, mutate) }
	body := func(v CreateRegistryRequest) string { return jsonBody(t, v) }
	past := e.now.Add(-time.Hour)
	cases := []struct {
		name, method, path, body, msg string
	}{
		{"ecr on ghcr", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "ghcr.io", Kind: "ecr", Password: Password(pw)}), "not an Amazon ECR registry"},
		{"basic on ecr host", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: ecrHost, Kind: "basic", Username: "AWS", Password: Password(pw)}), "use kind ecr"},
		{"ecr bad key id", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: ecrHost, Password: Password(pw), ECR: &ECRParams{AccessKeyID: "nope"}}), "not an AWS access key id"},
		{"ecr bad role", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: ecrHost, Password: Password(pw), ECR: &ECRParams{AccessKeyID: awsKeyID, RoleARN: "role"}}), `role ARN \"role\"`},
		{"ecr expired pasted", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: ecrHost, Password: Password(pw), ECR: &ECRParams{TokenExpiresAt: &past}}), "expired at"},
		{"ecr params on docker hub", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "docker.io", Username: "u", Password: Password(pw), ECR: &ECRParams{AccessKeyID: awsKeyID}}), "are for kind ecr"},
		{"ecr unknown param", "POST", regs, `{"name":"x","host":"` + ecrHost + `","password":"` + pw + `","ecr":{"secret_access_key":"` + pw + `"}}`, `unknown field \"secret_access_key\"`},
		{"acr half sp", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "r.azurecr.io", Password: Password(pw), ACR: &ACRParams{TenantID: tenant}}), "both a tenant id and a client id"},
		{"acr no username", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "r.azurecr.io", Password: Password(pw)}), "kind acr needs a username"},
		{"gcp not json", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "gcr.io", Password: Password("{" + pw)}), "not valid JSON"},
		{"gcp missing email", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "gcr.io", Password: Password(bad(func(m map[string]any) { delete(m, "client_email") }))}), "missing client_email"},
		{"gcp user type", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "us-docker.pkg.dev", Password: Password(bad(func(m map[string]any) { m["type"] = "authorized_user" }))}), `type is \"authorized_user\"`},
		{"gcp bad key", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "gcr.io", Password: Password(bad(func(m map[string]any) {
			m["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}))}), "private_key does not parse"},
		{"gcp bad username", "POST", regs, body(CreateRegistryRequest{Name: "x", Host: "gcr.io", Username: "bob", Password: Password(pw)}), `username \"bob\"`},
		{"patch ecr params without password", "PATCH", regs + "/ecr", `{"ecr":{"access_key_id":"` + awsKeyID + `"}}`, "give the password"},
		{"patch ecr username", "PATCH", regs + "/ecr", `{"username":"bob"}`, "always AWS"},
		{"patch ecr bad region", "PATCH", regs + "/ecr", `{"password":"` + pw + `","ecr":{"access_key_id":"` + awsKeyID + `","region":"moon-1"}}`, `region \"moon-1\"`},
		{"patch gcp bad json", "PATCH", regs + "/gcr", `{"password":"` + pw + `"}`, "not valid JSON"},
		{"patch gcp username alone", "PATCH", regs + "/gcr", `{"username":"_json_key_base64"}`, "give the password too"},
	}
	before := e.snapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := e.do(c.method, c.path, c.body)
			if code != 400 || !strings.Contains(b, c.msg) {
				t.Errorf("%d %s, want 400 with %s", code, b, c.msg)
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
	}
	e.assertNoLeak(pw)
}

func ptr[T any](v T) *T { return &v }
