package api

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Public test keys (issue 15 research notes) and their addresses.
const (
	tenantKeyA  = "a267fb03b3e6dc381550ea0257ace31433698f16248ba111dfb75550364d31fe"
	tenantAddrA = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	tenantKeyB  = "ef1450bdc18396f2254f52d8c525c0d933a8f146ec2a681eaf319f5899f2f60d"
	tenantAddrB = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
	testHubURL  = "https://hub.example"
)

func withTenants(publicURL string) envOption {
	return func(d *Deps) { d.AkashTenants, d.PublicURL = true, publicURL }
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// challenge asks for a login challenge for addr.
func (e *testEnv) challenge(addr string) TenantChallenge {
	e.t.Helper()
	rec := e.send(req{method: "POST", path: "/api/v1/tenant/challenge", body: `{"address":"` + addr + `"}`})
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("challenge: %d %s", rec.Code, rec.Body)
	}
	var c TenantChallenge
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// rawSign signs the ADR-036 doc of (signer, msg) with keyHex, whatever
// address the key has, as an attacker can; it returns the base64 key and
// the 64-byte signature.
func rawSign(t *testing.T, keyHex, signer, msg string) (string, []byte) {
	t.Helper()
	key := secp256k1.PrivKeyFromBytes(mustHex(t, keyHex))
	digest := sha256.Sum256(akash.SignBytes(signer, []byte(msg)))
	sig := ecdsa.Sign(key, digest[:])
	r, s := sig.R(), sig.S()
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return base64.StdEncoding.EncodeToString(key.PubKey().SerializeCompressed()), out
}

func loginBody(id, pub string, sig []byte, workspace string) string {
	b, _ := json.Marshal(map[string]any{"challenge": id, "pub_key": pub, "signature": base64.StdEncoding.EncodeToString(sig), "workspace": workspace})
	return string(b)
}

// tenantLogin logs in with the account key keyHex of addr and returns the
// answer.
func (e *testEnv) tenantLogin(keyHex, addr, workspace string) TenantLogin {
	e.t.Helper()
	c := e.challenge(addr)
	pub, sig, err := akash.Sign(mustHex(e.t, keyHex), addr, []byte(c.Message))
	if err != nil {
		e.t.Fatal(err)
	}
	rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: loginBody(c.ID, base64.StdEncoding.EncodeToString(pub), sig, workspace)})
	if rec.Code != http.StatusOK {
		e.t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var l TenantLogin
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

func TestTenantChallenge(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	c := e.challenge(tenantAddrA)
	want := "pullgate login\nhub: " + testHubURL + "\naddress: " + tenantAddrA + "\nnonce: "
	if !strings.HasPrefix(c.Message, want) || !strings.HasSuffix(c.Message, "\nexpires: "+c.ExpiresAt.Format(time.RFC3339)) {
		t.Fatalf("message %q", c.Message)
	}
	if c.SignDoc != string(akash.SignBytes(tenantAddrA, []byte(c.Message))) || c.Address != tenantAddrA {
		t.Fatalf("challenge %+v", c)
	}
	if got := c.ExpiresAt.Sub(e.now); got != ChallengeTTL {
		t.Fatalf("expires in %v, want %v", got, ChallengeTTL)
	}
	if c2 := e.challenge(tenantAddrA); c2.Message == c.Message || c2.ID == c.ID {
		t.Fatal("two challenges are the same")
	}
	for _, tc := range []struct{ body, want string }{
		{`{"address":"cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud"}`, `prefix \"cosmos\"`},
		{`{"address":"akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9x"}`, "not bech32"},
		{`{"address":""}`, "empty"},
		{`{"address":"` + tenantAddrA + `","extra":1}`, "unknown field"},
	} {
		rec := e.send(req{method: "POST", path: "/api/v1/tenant/challenge", body: tc.body})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("challenge %s: %d %s, want 400 naming %q", tc.body, rec.Code, rec.Body, tc.want)
		}
	}
	big := `{"address":"` + strings.Repeat("a", maxTenantBody) + `"}`
	if rec := e.send(req{method: "POST", path: "/api/v1/tenant/challenge", body: big}); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized challenge request: %d %s, want 413", rec.Code, rec.Body)
	}
}

func TestTenantLogin(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	e.must("POST", "/api/v1/workspaces", `{"name":"other"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/other/registries", `{"name":"ghcr","host":"ghcr.io/other","kind":"basic","username":"u","password":"p"}`, 201, nil)

	l := e.tenantLogin(tenantKeyA, tenantAddrA, "")
	if !l.Created || l.Workspace != "akash-m9l358xunh" || l.User != tenantAddrA || !strings.HasPrefix(l.Token, APITokenPrefix) {
		t.Fatalf("first login %+v", l)
	}
	if got := l.ExpiresAt.Sub(e.now); got != TenantTokenTTL {
		t.Fatalf("token expires in %v, want %v", got, TenantTokenTTL)
	}
	// The user is owner of exactly its workspace.
	u, err := e.st.GetUser(context.Background(), tenantAddrA)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.st.MembershipsOf(context.Background(), u.ID)
	if err != nil || len(ms) != 1 || ms[0].Workspace != l.Workspace || ms[0].Role != store.RoleOwner {
		t.Fatalf("memberships %+v, %v", ms, err)
	}
	// The token works in its workspace, and there only.
	if code, b := e.doAuth("POST", "/api/v1/workspaces/"+l.Workspace+"/registries", `{"name":"mine","host":"ghcr.io/me","kind":"basic","username":"u","password":"p"}`, "Bearer "+l.Token); code != 201 {
		t.Fatalf("tenant adds a registry: %d %s", code, b)
	}
	for _, path := range []string{"/api/v1/workspaces/other", "/api/v1/workspaces/other/registries", "/api/v1/workspaces/other/registries/ghcr"} {
		if code, b := e.doAuth("GET", path, "", "Bearer "+l.Token); code != 404 {
			t.Errorf("tenant GET %s: %d %s, want 404", path, code, b)
		}
	}
	if code, b := e.doAuth("POST", "/api/v1/workspaces", `{"name":"more"}`, "Bearer "+l.Token); code != 403 {
		t.Errorf("tenant creates a workspace: %d %s, want 403", code, b)
	}
	var list WorkspaceList
	if code, b := e.doAuth("GET", "/api/v1/workspaces", "", "Bearer "+l.Token); code != 200 || json.Unmarshal([]byte(b), &list) != nil || len(list.Workspaces) != 1 || list.Workspaces[0].Name != l.Workspace {
		t.Errorf("tenant lists workspaces: %d %s", code, b)
	}

	// A second login: same workspace (the name asked for is ignored), a
	// new token; the first stays valid.
	l2 := e.tenantLogin(tenantKeyA, tenantAddrA, "ignored")
	if l2.Created || l2.Workspace != l.Workspace || l2.Token == l.Token || l2.TokenID == l.TokenID {
		t.Fatalf("second login %+v", l2)
	}
	if code, _ := e.doAuth("GET", "/api/v1/workspaces/"+l.Workspace, "", "Bearer "+l.Token); code != 200 {
		t.Fatalf("first token after the second login: %d", code)
	}
	// Another account, its own named workspace; it cannot see the first.
	lb := e.tenantLogin(tenantKeyB, tenantAddrB, "tenant-b")
	if !lb.Created || lb.Workspace != "tenant-b" {
		t.Fatalf("login B %+v", lb)
	}
	if code, _ := e.doAuth("GET", "/api/v1/workspaces/"+l.Workspace+"/registries", "", "Bearer "+lb.Token); code != 404 {
		t.Fatalf("tenant B reads tenant A's registries: %d", code)
	}

	// The activity log: one tenant.login row per login, as the tenant, in
	// its workspace.
	as, err := e.st.QueryActivity(context.Background(), store.ActivityQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if a.Action == "tenant.login" {
			n++
			if a.PrincipalKind != PrincipalUser || (a.Principal != tenantAddrA && a.Principal != tenantAddrB) || a.Result != "ok" || a.Workspace == "" {
				t.Errorf("activity row %+v", a)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d tenant.login rows, want 3", n)
	}

	// Nothing secret in the log or the database: not the tokens, not a
	// signature (and the token answer came once).
	logs := e.logs.String()
	for _, secret := range []string{l.Token, l2.Token, lb.Token} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a token")
		}
		e.assertShownOnce(secret)
	}
}

// A workspace a credential import created (no user yet) gets its user on
// the account's first login.
func TestTenantLoginImportedAccount(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	a, created, err := e.st.EnsureAkashAccount(context.Background(), tenantAddrA, "sdl-tenant")
	if err != nil || !created {
		t.Fatal(err)
	}
	l := e.tenantLogin(tenantKeyA, tenantAddrA, "wanted")
	if l.Created || l.Workspace != a.Workspace {
		t.Fatalf("login %+v, want the imported workspace %s", l, a.Workspace)
	}
	var ms MemberList
	e.must("GET", "/api/v1/workspaces/sdl-tenant/members", "", 200, &ms)
	if len(ms.Members) != 1 || ms.Members[0].User != tenantAddrA || ms.Members[0].Role != "owner" {
		t.Fatalf("members %+v", ms)
	}
}

func TestTenantLoginRefused(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	pubA, _, err := akash.Sign(mustHex(t, tenantKeyA), tenantAddrA, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubAB64 := base64.StdEncoding.EncodeToString(pubA)
	good := func(c TenantChallenge) []byte {
		_, sig, err := akash.Sign(mustHex(t, tenantKeyA), tenantAddrA, []byte(c.Message))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, tc := range []struct {
		name string
		// body builds the login request for challenge c.
		body    func(c TenantChallenge) string
		advance time.Duration
		want    string
	}{
		{"forged: another key claims the address", func(c TenantChallenge) string {
			pub, sig := rawSign(t, tenantKeyB, tenantAddrA, c.Message)
			return loginBody(c.ID, pub, sig, "")
		}, 0, "not of " + tenantAddrA},
		{"forged: another key's signature with the right public key", func(c TenantChallenge) string {
			_, sig := rawSign(t, tenantKeyB, tenantAddrA, c.Message)
			return loginBody(c.ID, pubAB64, sig, "")
		}, 0, "does not match"},
		{"bit-flipped signature", func(c TenantChallenge) string {
			sig := good(c)
			sig[5] ^= 0x10
			return loginBody(c.ID, pubAB64, sig, "")
		}, 0, "does not match"},
		{"high-S twin of a valid signature", func(c TenantChallenge) string {
			sig := good(c)
			var s secp256k1.ModNScalar
			s.SetByteSlice(sig[32:])
			s.Negate()
			s.PutBytesUnchecked(sig[32:])
			return loginBody(c.ID, pubAB64, sig, "")
		}, 0, "high-S"},
		{"truncated signature", func(c TenantChallenge) string { return loginBody(c.ID, pubAB64, good(c)[:63], "") }, 0, "63 bytes"},
		{"signature over another hub's message", func(c TenantChallenge) string {
			other := strings.Replace(c.Message, "hub: "+testHubURL, "hub: https://evil.example", 1)
			_, sig, _ := akash.Sign(mustHex(t, tenantKeyA), tenantAddrA, []byte(other))
			return loginBody(c.ID, pubAB64, sig, "")
		}, 0, "does not match"},
		{"signature over the sign doc the client would like", func(c TenantChallenge) string {
			_, sig := rawSign(t, tenantKeyA, tenantAddrA, "pullgate login")
			return loginBody(c.ID, pubAB64, sig, "")
		}, 0, "does not match"},
		{"expired challenge", func(c TenantChallenge) string { return loginBody(c.ID, pubAB64, good(c), "") }, ChallengeTTL, "expired"},
		{"key of the wrong type", func(c TenantChallenge) string {
			return `{"challenge":"` + c.ID + `","pub_key":{"type":"tendermint/PubKeyEd25519","value":"` + pubAB64 + `"},"signature":"` + base64.StdEncoding.EncodeToString(good(c)) + `"}`
		}, 0, "PubKeyEd25519"},
		{"signature not base64", func(c TenantChallenge) string {
			return `{"challenge":"` + c.ID + `","pub_key":"` + pubAB64 + `","signature":"%%%"}`
		}, 0, "base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.now = e.now.Add(time.Minute) // refill the rate limit
			start := e.now
			c := e.challenge(tenantAddrA)
			e.now = e.now.Add(tc.advance)
			rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: tc.body(c)})
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("login: %d %s, want 401 naming %q", rec.Code, rec.Body, tc.want)
			}
			e.now = start
			// The failed attempt used the challenge up: the right
			// signature now gets nowhere.
			rec = e.send(req{method: "POST", path: "/api/v1/tenant/login", body: loginBody(c.ID, pubAB64, good(c), "")})
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "already used") {
				t.Fatalf("retry after a failed attempt: %d %s, want 401 (challenge used)", rec.Code, rec.Body)
			}
		})
	}
	if _, err := e.st.GetUser(context.Background(), tenantAddrA); err == nil {
		t.Fatal("a refused login created the user")
	}
	if ws, _ := e.st.ListWorkspaces(context.Background()); len(ws) != 0 {
		t.Fatalf("refused logins created workspaces: %+v", ws)
	}

	// Replay of a successful login.
	c := e.challenge(tenantAddrA)
	body := loginBody(c.ID, pubAB64, good(c), "")
	if rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: body}); rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: body}); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "already used") {
		t.Fatalf("replayed login: %d %s, want 401", rec.Code, rec.Body)
	}
	// A signature is never echoed or logged.
	e.assertNoLeak(base64.StdEncoding.EncodeToString(good(c)))
}

// A challenge of account X cannot be answered with account Y's key, even
// with Y's valid signature of X's message.
func TestTenantLoginOtherAccountsKey(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	c := e.challenge(tenantAddrA)
	for _, signer := range []string{tenantAddrA, tenantAddrB} {
		pub, sig := rawSign(t, tenantKeyB, signer, c.Message)
		rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: loginBody(c.ID, pub, sig, "")})
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("B's key on A's challenge (signer %s): %d %s", signer, rec.Code, rec.Body)
		}
		c = e.challenge(tenantAddrA)
	}
	if _, err := e.st.GetUser(context.Background(), tenantAddrB); err == nil {
		t.Fatal("B's user was created")
	}
}

// Keplr's signArbitrary answer is accepted as it is.
func TestTenantLoginKeplrShape(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	c := e.challenge(tenantAddrA)
	pub, sig, err := akash.Sign(mustHex(t, tenantKeyA), tenantAddrA, []byte(c.Message))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"challenge":"` + c.ID + `","pub_key":{"type":"tendermint/PubKeySecp256k1","value":"` + base64.StdEncoding.EncodeToString(pub) +
		`"},"signature":"` + base64.StdEncoding.EncodeToString(sig) + `","workspace":"acme"}`
	rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: body})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"workspace":"acme"`) {
		t.Fatalf("Keplr-shaped login: %d %s", rec.Code, rec.Body)
	}
}

// Without --akash-tenants the routes answer 404 and change nothing.
func TestTenantOff(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.PublicURL = testHubURL })
	for _, path := range []string{"/api/v1/tenant/challenge", "/api/v1/tenant/login"} {
		rec := e.send(req{method: "POST", path: path, body: `{"address":"` + tenantAddrA + `"}`})
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "tenant self-service is off on this hub") {
			t.Errorf("%s: %d %s, want 404", path, rec.Code, rec.Body)
		}
	}
	db, err := sql.Open("sqlite", "file:"+e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM akash_challenges`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("challenges stored while off: %d, %v", n, err)
	}
}

func TestTenantRateLimit(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	got429 := 0
	for i := 0; i < tenantPerClientBurst+5; i++ {
		rec := e.send(req{method: "POST", path: "/api/v1/tenant/challenge", body: `{"address":"` + tenantAddrA + `"}`})
		if rec.Code == http.StatusTooManyRequests {
			got429++
			if rec.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if got429 != 5 {
		t.Fatalf("%d answers 429, want 5 (burst %d)", got429, tenantPerClientBurst)
	}
	// Logins count too, and the bucket refills with time.
	if rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: `{}`}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("login over the limit: %d", rec.Code)
	}
	e.now = e.now.Add(10 * time.Second)
	if rec := e.send(req{method: "POST", path: "/api/v1/tenant/challenge", body: `{"address":"` + tenantAddrA + `"}`}); rec.Code != http.StatusCreated {
		t.Fatalf("after a pause: %d %s", rec.Code, rec.Body)
	}
	// Another client has a bucket of its own, within the global one.
	l := newTenantLimiter()
	for i := 0; i < tenantGlobalBurst; i++ {
		if err := l.allow("10.0.0."+string(rune('a'+i%20)), e.now); err != nil {
			t.Fatalf("request %d refused: %v", i, err)
		}
	}
	if err := l.allow("10.9.9.9", e.now); err == nil || !strings.Contains(err.Error(), "on this hub") {
		t.Fatalf("over the global limit: %v", err)
	}
}

// A tenant who logs in often stays within MaxActiveAPITokens: the oldest
// login token makes room; tokens it made itself are never revoked for it.
func TestTenantLoginTokenLimit(t *testing.T) {
	e := newEnv(t, withTenants(testHubURL))
	ctx := context.Background()
	first := e.tenantLogin(tenantKeyA, tenantAddrA, "")
	for i := 1; i < MaxActiveAPITokens; i++ {
		e.now = e.now.Add(time.Second) // distinct creation order
		if _, err := e.st.CreateAPIToken(ctx, tenantAddrA, store.APIToken{Description: tenantTokenDescription, ExpiresAt: e.now.Add(time.Hour)}, []byte{byte(i), 1}); err != nil {
			t.Fatal(err)
		}
	}
	e.now = e.now.Add(time.Minute)
	e.tenantLogin(tenantKeyA, tenantAddrA, "")
	if code, _ := e.doAuth("GET", "/api/v1/whoami", "", "Bearer "+first.Token); code != http.StatusUnauthorized {
		t.Fatalf("the oldest login token still works (%d)", code)
	}
	// Only the tenant's own tokens left: the login is refused, nothing revoked.
	u, _ := e.st.GetUser(ctx, tenantAddrA)
	ts, _ := e.st.ListAPITokens(ctx, u.ID)
	for _, tk := range ts {
		if _, err := e.st.RevokeAPIToken(ctx, tk.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < MaxActiveAPITokens; i++ {
		if _, err := e.st.CreateAPIToken(ctx, tenantAddrA, store.APIToken{Description: "mine", ExpiresAt: e.now.Add(time.Hour)}, []byte{byte(i), 2}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.challenge(tenantAddrA)
	pub, sig, _ := akash.Sign(mustHex(t, tenantKeyA), tenantAddrA, []byte(c.Message))
	rec := e.send(req{method: "POST", path: "/api/v1/tenant/login", body: loginBody(c.ID, base64.StdEncoding.EncodeToString(pub), sig, "")})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "revoke unused ones") {
		t.Fatalf("login at the limit of own tokens: %d %s", rec.Code, rec.Body)
	}
}
