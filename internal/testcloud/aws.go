// Package testcloud provides wire-level fakes of the cloud identity
// services pullgate talks to, for tests: the Amazon ECR API (JSON 1.1,
// GetAuthorizationToken) and STS (Query, AssumeRole) with real SigV4
// verification, Microsoft Entra ID's token endpoint, and an Azure Container
// Registry token service (/oauth2/exchange, /oauth2/token) in front of a
// real registry from internal/testupstream.
//
// The fakes issue tokens that real registries accept: the ECR fake's token
// carries the password of a registry started with
// testupstream.WithBasicAuth("AWS", password); the ACR front gets access
// tokens from its registry's own token endpoint.
package testcloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ECRTarget is the X-Amz-Target of ECR GetAuthorizationToken.
const ECRTarget = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

// AWS is a fake of the ECR and STS APIs on one loopback server. Requests
// must be SigV4-signed with a configured key pair (or, for ECR, with the
// temporary credentials its AssumeRole handed out); the signature is
// verified by recomputing it.
type AWS struct {
	URL string
	// Region the requests must be signed for.
	Region string

	mu        sync.Mutex
	keys      map[string]awsKey // access key id → key
	password  string            // registry password carried by ECR tokens
	ttl       time.Duration
	delay     time.Duration
	fail      string // "", "denied", "throttle", "5xx", "empty"
	roles     map[string]string
	calls     []AWSCall
	ecrCalls  atomic.Int64
	stsCalls  atomic.Int64
	issuedTok []string
}

type awsKey struct {
	secret  string
	session string // temporary credentials only
}

// AWSCall is one request as the fake saw it.
type AWSCall struct {
	Service     string // "ecr" or "sts"
	Target      string // X-Amz-Target (ECR)
	Action      string // Action (STS)
	ContentType string
	AccessKeyID string // from the Authorization header's Credential
	Signed      bool   // Authorization header present and SigV4
	SignatureOK bool   // recomputed signature matches
	Status      int
	RoleARN     string
	ExternalID  string
	SessionName string
}

// StartAWS starts the fake. It accepts requests signed with
// accessKeyID/secretKey and hands out ECR tokens carrying password, valid
// for ttl (0: 12 hours).
func StartAWS(t testing.TB, region, accessKeyID, secretKey, password string, ttl time.Duration) *AWS {
	t.Helper()
	if ttl == 0 {
		ttl = 12 * time.Hour
	}
	a := &AWS{Region: region, keys: map[string]awsKey{accessKeyID: {secret: secretKey}}, password: password, ttl: ttl, roles: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// AllowRole lets AssumeRole succeed for roleARN (with externalID, when not
// empty).
func (a *AWS) AllowRole(roleARN, externalID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles[roleARN] = externalID
}

// SetPassword changes the registry password carried by new tokens.
func (a *AWS) SetPassword(pw string) { a.mu.Lock(); a.password = pw; a.mu.Unlock() }

// SetDelay makes every answer wait d (to widen concurrency windows).
func (a *AWS) SetDelay(d time.Duration) { a.mu.Lock(); a.delay = d; a.mu.Unlock() }

// SetFail makes ECR answer with an error: "denied" (400
// UnrecognizedClientException), "throttle" (400 ThrottlingException),
// "5xx" (500) or "empty" (no authorization data); "" answers normally.
func (a *AWS) SetFail(mode string) { a.mu.Lock(); a.fail = mode; a.mu.Unlock() }

// ECRCalls is the number of GetAuthorizationToken requests served.
func (a *AWS) ECRCalls() int { return int(a.ecrCalls.Load()) }

// STSCalls is the number of AssumeRole requests served.
func (a *AWS) STSCalls() int { return int(a.stsCalls.Load()) }

// Calls returns every request the fake saw.
func (a *AWS) Calls() []AWSCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AWSCall(nil), a.calls...)
}

// Tokens returns every ECR authorization token issued (base64 AWS:password).
func (a *AWS) Tokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.issuedTok...)
}

func (a *AWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a.mu.Lock()
	delay := a.delay
	a.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	call := AWSCall{ContentType: r.Header.Get("Content-Type"), Target: r.Header.Get("X-Amz-Target")}
	rec := &httprec.Recorder{ResponseWriter: w, Status: http.StatusOK}
	defer func() {
		call.Status = rec.Status
		a.mu.Lock()
		a.calls = append(a.calls, call)
		a.mu.Unlock()
	}()
	service := "ecr"
	if strings.HasPrefix(call.ContentType, "application/x-www-form-urlencoded") {
		service = "sts"
	}
	call.Service = service
	key, ok := a.verify(r, body, service, &call)
	if !ok {
		awsJSONError(rec, service, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	if service == "sts" {
		a.serveSTS(rec, body, &call)
		return
	}
	a.serveECR(rec, key, &call)
}

// verify checks the SigV4 Authorization header by recomputing it with the
// secret of the key it names, over exactly the headers it says it signed.
func (a *AWS) verify(r *http.Request, body []byte, service string, call *AWSCall) (string, bool) {
	authz := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(authz, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", false
	}
	call.Signed = true
	var cred, signed string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		}
	}
	// Credential=AKID/20300102/us-east-1/ecr/aws4_request
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", false
	}
	call.AccessKeyID = parts[0]
	if parts[2] != a.Region || parts[3] != service {
		return parts[0], false
	}
	a.mu.Lock()
	key, known := a.keys[parts[0]]
	a.mu.Unlock()
	if !known {
		return parts[0], false
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return parts[0], false
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	req, _ := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	req.Host = r.Host
	for _, h := range strings.Split(signed, ";") {
		if h == "host" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			req.Header.Add(h, v)
		}
	}
	req.Header.Del("X-Amz-Date")
	req.Header.Del("X-Amz-Security-Token")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: parts[0], SecretAccessKey: key.secret, SessionToken: key.session},
		req, hex.EncodeToString(sum[:]), service, a.Region, when)
	if err != nil || req.Header.Get("Authorization") != authz {
		return parts[0], false
	}
	if key.session != "" && r.Header.Get("X-Amz-Security-Token") != key.session {
		return parts[0], false
	}
	call.SignatureOK = true
	return parts[0], true
}

func (a *AWS) serveECR(w http.ResponseWriter, _ string, call *AWSCall) {
	if call.Target != ECRTarget || !strings.HasPrefix(call.ContentType, "application/x-amz-json-1.1") {
		awsJSONError(w, "ecr", http.StatusBadRequest, "UnknownOperationException", "unknown operation "+call.Target)
		return
	}
	a.ecrCalls.Add(1)
	a.mu.Lock()
	fail, pw, ttl := a.fail, a.password, a.ttl
	a.mu.Unlock()
	switch fail {
	case "denied":
		awsJSONError(w, "ecr", http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	case "throttle":
		awsJSONError(w, "ecr", http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case "5xx":
		awsJSONError(w, "ecr", http.StatusInternalServerError, "ServerException", "internal failure")
		return
	case "empty":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"authorizationData":[]}`)
		return
	}
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:" + pw))
	a.mu.Lock()
	a.issuedTok = append(a.issuedTok, tok)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": tok,
		"expiresAt":          float64(time.Now().Add(ttl).Unix()),
		// A hostile or confused answer must not steer the hub anywhere.
		"proxyEndpoint": "https://attacker.example",
	}}})
}

func (a *AWS) serveSTS(w http.ResponseWriter, body []byte, call *AWSCall) {
	form, _ := url.ParseQuery(string(body))
	call.Action, call.RoleARN, call.ExternalID, call.SessionName = form.Get("Action"), form.Get("RoleArn"), form.Get("ExternalId"), form.Get("RoleSessionName")
	a.stsCalls.Add(1)
	a.mu.Lock()
	ext, ok := a.roles[call.RoleARN]
	a.mu.Unlock()
	if call.Action != "AssumeRole" || !ok || ext != call.ExternalID {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole on %s</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, call.RoleARN)
		return
	}
	id, secret, session := "ASIA"+strings.ToUpper(randHex(8)), randHex(20), randHex(32)
	a.mu.Lock()
	a.keys[id] = awsKey{secret: secret, session: session}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>%s/pullgate-hub</Arn><AssumedRoleId>AROA:pullgate-hub</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, id, secret, session, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), call.RoleARN)
}

func awsJSONError(w http.ResponseWriter, service string, status int, code, msg string) {
	if service == "sts" {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r0</RequestId></ErrorResponse>`, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
