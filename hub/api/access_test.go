package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/tokensvc"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/pkg/akash"
)

// The Akash addresses of the walk: cluster "akash" runs provider
// walkProvider's leases; walkLease is one of them.
var (
	walkProvider  = testAkashAddress(1)
	walkLease     = akash.LeaseID{Owner: testAkashAddress(2), DSeq: 10, GSeq: 1, OSeq: 1, Provider: walkProvider}
	walkLeaseJSON = `{"owner":"` + walkLease.Owner + `","dseq":10,"gseq":1,"oseq":1,"provider":"` + walkProvider + `"}`
)

// testAkashAddress is a valid akash1... address made from seed.
func testAkashAddress(seed byte) string {
	key := make([]byte, 33)
	key[0], key[1] = 2, seed
	a, err := akash.AddressOf(key)
	if err != nil {
		panic(err)
	}
	return a
}

// withSAVerifier verifies service-account tokens with a token service's
// verifier, as the hub does.
func withSAVerifier(d *Deps) {
	d.ServiceAccounts = tokensvc.New(d.Store.(*store.SQL), d.Keyring)
	d.AkashImportCredentials = true
}

// akashCluster adds the shared cluster "akash": an Akash provider's,
// whose binding controller is pullgate:akash, with e.sa's keys.
func (e *accessEnv) akashCluster() store.Cluster {
	e.t.Helper()
	c, err := e.st.CreateCluster(context.Background(), store.Cluster{Name: "akash", SAJWKS: e.sa.JWKS(),
		AkashProvider: walkProvider, AkashController: "pullgate:akash"}, []byte("h"))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// The principals of the route walk, in the order they are tried: those
// refused first, so that a refused request is seen to change nothing
// before an allowed one changes something.
// "controller" is the Akash binding controller of cluster "akash" (a
// service-account token of that cluster's issuer).
var walkPrincipals = []string{"none", "revoked-a", "expired-a", "owner-b", "viewer-a", "operator-a", "owner-a", "controller", "admin"}

// accessEnv is a hub with two workspaces, their objects and members.
type accessEnv struct {
	*testEnv
	tokens  map[string]string // principal -> bearer token ("" for none)
	tokenID map[string]string
	sa      *testsa.Issuer // the "akash" cluster's service-account issuer
}

// aNames are workspace a's object names: no response to a member of b
// may contain one that its request did not name.
var aNames = []string{"a-gh", "a-web", "a-edge", "a-org", "owner-a", "operator-a", "viewer-a"}

func newAccessEnv(t *testing.T, opts ...envOption) *accessEnv {
	t.Helper()
	e := &accessEnv{testEnv: newEnv(t, append([]envOption{withSAVerifier}, opts...)...), tokens: map[string]string{"admin": testAdmin, "none": ""}, tokenID: map[string]string{},
		sa: testsa.New(t)}
	e.tokens["controller"] = e.sa.Token(t, "pullgate", "akash", testsa.Opts{})
	for _, ws := range []string{"a", "b"} {
		e.must("POST", "/api/v1/workspaces", `{"name":"`+ws+`"}`, 201, nil)
		e.must("POST", "/api/v1/workspaces/"+ws+"/registries", `{"name":"`+ws+`-gh","host":"ghcr.io/`+ws+`-org","username":"u","password":"pw-`+ws+`"}`, 201, nil)
		e.must("POST", "/api/v1/clusters", `{"name":"`+ws+`-edge","workspace":"`+ws+`"}`, 201, nil)
		e.must("POST", "/api/v1/workspaces/"+ws+"/installs", `{"name":"`+ws+`-web","repos":["ghcr.io/`+ws+`-org/*"],"cluster":"`+ws+`-edge","namespace":"web"}`, 201, nil)
	}
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	for _, m := range []struct{ user, ws, role string }{
		{"owner-a", "a", "owner"}, {"operator-a", "a", "operator"}, {"viewer-a", "a", "viewer"},
		{"owner-b", "b", "owner"}, {"revoked-a", "a", "owner"}, {"expired-a", "a", "owner"},
	} {
		e.addMember(m.ws, m.user, m.role)
		exp := ""
		if m.user == "expired-a" {
			exp = "1h"
		}
		e.tokens[m.user], e.tokenID[m.user] = e.userToken(m.user, exp)
	}
	e.must("DELETE", "/api/v1/tokens/"+e.tokenID["revoked-a"], "", 200, nil)
	if err := e.st.AppendAudit(context.Background(), []store.AuditEvent{{Workspace: "a", Install: "a-web", Repository: "a-org/app"}}); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(2 * time.Hour) // expired-a's token is past its hour
	return e
}

// walkBodies are request bodies that an allowed caller's request would
// mostly succeed with; a route not listed gets "{}".
var walkBodies = map[string]string{
	"POST /api/v1/tokens":                                                  `{}`,
	"POST /api/v1/workspaces":                                              `{"name":"new"}`,
	"POST /api/v1/workspaces/{ws}/members":                                 `{"user":"carol","role":"viewer"}`,
	"PATCH /api/v1/workspaces/{ws}/members/{user}":                         `{"role":"operator"}`,
	"POST /api/v1/workspaces/{ws}/registries":                              `{"name":"new","host":"quay.io","username":"u","password":"p"}`,
	"PATCH /api/v1/workspaces/{ws}/registries/{name}":                      `{"username":"u2"}`,
	"POST /api/v1/workspaces/{ws}/installs":                                `{"name":"new","all_repos":true}`,
	"PATCH /api/v1/workspaces/{ws}/installs/{name}":                        `{"repos":["ghcr.io/a-org/x"]}`,
	"POST /api/v1/clusters":                                                `{"name":"new","workspace":"a"}`,
	"POST /api/v1/clusters/{cluster}/join-token":                           `{"join_token_uses":1}`,
	"PUT /api/v1/clusters/{cluster}/jwks":                                  `{"jwks":{"keys":[]},"issuer":"https://x"}`,
	"PATCH /api/v1/clusters/{cluster}":                                     `{"akash_provider":"","akash_controller":""}`,
	"PUT /api/v1/clusters/{cluster}/akash/leases":                          `{"leases":[` + walkLeaseJSON + `]}`,
	"PUT /api/v1/clusters/{cluster}/akash/leases/{namespace}":              walkLeaseJSON,
	"POST /api/v1/clusters/{cluster}/akash/leases/{namespace}/credentials": `{"services":[{"name":"web","images":["ghcr.io/x/app:1"],"credentials":{"host":"ghcr.io","username":"u","password":"p"}}]}`,
	"POST /api/v1/workspaces/{ws}/registries/{name}/test":                  `{}`,
}

// wantAccess is who may call each route, written down apart from the
// route table so that a wrong rule in the table fails the walk, and a new
// route fails it until its access is stated here. Workspace roles:
// viewer reads; operator changes registries, installs, install tokens,
// SDL imports and the workspace's clusters; owner also members and the
// activity log. "cluster-*" is the role in the workspace owning the
// cluster (a shared cluster: the admin; "cluster-read" lets members read
// a shared cluster's name).
var wantAccess = map[string]string{
	"POST /api/v1/session":   "public",
	"GET /api/v1/session":    "public",
	"DELETE /api/v1/session": "public",
	"GET /api/v1/whoami":     "signed-in",

	"POST /api/v1/tenant/challenge": "public",
	"POST /api/v1/tenant/login":     "public",

	"POST /api/v1/tokens":         "signed-in",
	"GET /api/v1/tokens":          "signed-in",
	"DELETE /api/v1/tokens/{id}":  "signed-in",
	"DELETE /api/v1/users/{user}": "admin",

	"POST /api/v1/workspaces":        "admin",
	"GET /api/v1/workspaces":         "signed-in",
	"GET /api/v1/workspaces/{ws}":    "viewer",
	"DELETE /api/v1/workspaces/{ws}": "admin",

	"GET /api/v1/workspaces/{ws}/members":                    "owner",
	"POST /api/v1/workspaces/{ws}/members":                   "owner",
	"PATCH /api/v1/workspaces/{ws}/members/{user}":           "owner",
	"DELETE /api/v1/workspaces/{ws}/members/{user}":          "owner",
	"GET /api/v1/workspaces/{ws}/activity":                   "owner",
	"POST /api/v1/workspaces/{ws}/registries":                "operator",
	"GET /api/v1/workspaces/{ws}/registries":                 "viewer",
	"GET /api/v1/workspaces/{ws}/registries/{name}":          "viewer",
	"PATCH /api/v1/workspaces/{ws}/registries/{name}":        "operator",
	"DELETE /api/v1/workspaces/{ws}/registries/{name}":       "operator",
	"POST /api/v1/workspaces/{ws}/registries/{name}/enable":  "operator",
	"POST /api/v1/workspaces/{ws}/registries/{name}/disable": "operator",
	"POST /api/v1/workspaces/{ws}/registries/{name}/test":    "operator",
	"POST /api/v1/workspaces/{ws}/installs":                  "operator",
	"GET /api/v1/workspaces/{ws}/installs":                   "viewer",
	"GET /api/v1/workspaces/{ws}/installs/{name}":            "viewer",
	"PATCH /api/v1/workspaces/{ws}/installs/{name}":          "operator",
	"DELETE /api/v1/workspaces/{ws}/installs/{name}":         "operator",
	"POST /api/v1/workspaces/{ws}/installs/{name}/enable":    "operator",
	"POST /api/v1/workspaces/{ws}/installs/{name}/disable":   "operator",
	"POST /api/v1/workspaces/{ws}/installs/{name}/tokens":    "operator",
	"POST /api/v1/workspaces/{ws}/sdl-imports":               "operator",

	"POST /api/v1/clusters":                               "signed-in", // operator of the body's workspace: see expect
	"GET /api/v1/clusters":                                "signed-in",
	"GET /api/v1/clusters/{cluster}":                      "cluster-read",
	"DELETE /api/v1/clusters/{cluster}":                   "cluster-operator",
	"POST /api/v1/clusters/{cluster}/join-token":          "cluster-operator",
	"GET /api/v1/clusters/{cluster}/jwks":                 "cluster-viewer",
	"PUT /api/v1/clusters/{cluster}/jwks":                 "cluster-operator",
	"POST /api/v1/clusters/{cluster}/jwks/approve":        "cluster-operator",
	"GET /api/v1/clusters/{cluster}/nodes":                "cluster-viewer",
	"POST /api/v1/clusters/{cluster}/nodes/{node}/revoke": "cluster-operator",
	"PATCH /api/v1/clusters/{cluster}":                    "admin",

	"PUT /api/v1/clusters/{cluster}/akash/leases":                          "akash-controller",
	"GET /api/v1/clusters/{cluster}/akash/leases":                          "admin",
	"PUT /api/v1/clusters/{cluster}/akash/leases/{namespace}":              "akash-controller",
	"DELETE /api/v1/clusters/{cluster}/akash/leases/{namespace}":           "akash-controller",
	"POST /api/v1/clusters/{cluster}/akash/leases/{namespace}/credentials": "akash-controller",
	"GET /api/v1/workspaces/{ws}/akash/leases":                             "viewer",

	"GET /api/v1/audit":        "signed-in",
	"GET /api/v1/audit/stats":  "signed-in",
	"GET /api/v1/audit/export": "signed-in",
	"GET /api/v1/activity":     "admin",

	"GET /api/v1/cache":                     "admin",
	"GET /api/v1/cache/entries":             "admin",
	"DELETE /api/v1/cache/entries/{digest}": "admin",
	"POST /api/v1/cache/warm":               "admin",
}

// fill puts workspace a's objects (and cluster) into a route's path.
func (e *accessEnv) fill(path, cluster string) string {
	name := "a-gh"
	if strings.Contains(path, "/installs/") {
		name = "a-web"
	}
	return strings.NewReplacer("{ws}", "a", "{name}", name, "{cluster}", cluster, "{node}", "n1",
		"{user}", "viewer-a", "{id}", e.tokenID["owner-a"], "{digest}", "sha256:"+strings.Repeat("0", 64),
		"{namespace}", walkLease.Namespace()).Replace(path)
}

// expect is what principal must get on rt: "ok" (let through: neither
// 401 nor 403 nor the 404 of an object it may not see), "401", "403" or
// "404".
func expect(rt *route, principal, cluster string) string {
	access := wantAccess[rt.method+" "+rt.path]
	switch principal {
	case "none", "revoked-a", "expired-a":
		return "401"
	case "admin":
		return "ok"
	case "controller":
		// Its token works on the controller routes of its own cluster
		// only; elsewhere it is no credential at all.
		switch {
		case access != "akash-controller":
			return "401"
		case cluster == "akash":
			return "ok"
		}
		return "403" // a cluster without an Akash provider
	}
	key := rt.method + " " + rt.path
	// Handler-level checks of signed-in routes.
	switch {
	case key == "POST /api/v1/clusters" && principal == "owner-b":
		return "404" // workspace a, named in the body
	case key == "POST /api/v1/clusters" && principal == "viewer-a":
		return "403"
	case key == "DELETE /api/v1/tokens/{id}" && principal != "owner-a":
		return "404" // another user's token
	}
	role := map[string]store.Role{"owner-a": store.RoleOwner, "operator-a": store.RoleOperator, "viewer-a": store.RoleViewer}[principal]
	switch access {
	case "signed-in":
		return "ok"
	case "admin":
		if principal == "owner-b" && strings.Contains(rt.path, "{ws}") {
			return "404"
		}
		return "403"
	}
	if access == "akash-controller" {
		if principal == "owner-b" && cluster == "a-edge" {
			return "404"
		}
		return "403"
	}
	need, isCluster := strings.CutPrefix(access, "cluster-")
	if isCluster && cluster == "shared" {
		if need == "read" {
			return "ok"
		}
		return "403"
	}
	if need == "read" {
		need = "viewer"
	}
	if principal == "owner-b" {
		return "404"
	}
	if role.Rank() < store.Role(need).Rank() {
		return "403"
	}
	return "ok"
}

// accessState is everything the walk's requests could change, for the
// check that a refused request changed nothing.
func (e *accessEnv) accessState() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	wss, _ := e.st.ListWorkspaces(ctx)
	for _, ws := range wss {
		fmt.Fprintf(&b, "ws %s\n", ws.Name)
		cs, _ := e.st.ListCredentials(ctx, ws.Name)
		for _, c := range cs {
			fmt.Fprintf(&b, " reg %s %s %v %d %s\n", c.Name, c.Username, c.Enabled, c.Version, c.UpdatedAt)
		}
		ins, _ := e.st.ListInstalls(ctx, ws.Name)
		for _, in := range ins {
			fmt.Fprintf(&b, " inst %s %v %d %v %s\n", in.Name, in.Enabled, in.Generation, in.Repos, in.ClusterID)
		}
		ms, _ := e.st.ListMembers(ctx, ws.Name)
		for _, m := range ms {
			fmt.Fprintf(&b, " member %s %s\n", m.User, m.Role)
		}
	}
	cs, _ := e.st.ListClusters(ctx)
	for _, c := range cs {
		fmt.Fprintf(&b, "cluster %s %s %d %s %s %s %s\n", c.Name, c.WorkspaceID, c.JoinUsesLeft, c.SAJWKS, c.SAIssuer, c.AkashProvider, c.AkashController)
		ls, _ := e.st.AkashLeasesByCluster(ctx, c.ID)
		for _, l := range ls {
			fmt.Fprintf(&b, " lease %s %s\n", l.Namespace, l.LeaseID)
		}
	}
	ts, _ := e.st.ListAPITokens(ctx, "")
	for _, t := range ts {
		fmt.Fprintf(&b, "token %s %s %v\n", t.ID, t.User, t.RevokedAt.IsZero())
	}
	return b.String()
}

func (e *accessEnv) lastActivity() store.Activity {
	e.t.Helper()
	as, err := e.st.QueryActivity(context.Background(), store.ActivityQuery{Limit: store.MaxAuditLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(as) == 0 {
		return store.Activity{}
	}
	return as[len(as)-1]
}

// TestRouteAccess walks the route table: every route, for every kind of
// principal, answers as its declared rule says, a refused request changes
// nothing and is in the activity log, and a member of workspace b learns
// nothing of workspace a. A route added without a rule fails New; one
// with the wrong rule fails here.
func TestRouteAccess(t *testing.T) {
	var public []string
	for i := range routes {
		rt := &routes[i]
		access, ok := wantAccess[rt.method+" "+rt.path]
		if !ok {
			t.Errorf("route %s %s: state who may call it in wantAccess", rt.method, rt.path)
			continue
		}
		if access == "public" || rt.access.kind == rulePublic {
			public = append(public, rt.method+" "+rt.path)
			continue
		}
		clusters := []string{""}
		if strings.Contains(rt.path, "{cluster}") {
			clusters = []string{"a-edge", "shared"}
		}
		if strings.Contains(rt.path, "{cluster}/akash/") {
			clusters = append(clusters, "akash")
		}
		for _, cluster := range clusters {
			t.Run(strings.TrimSpace(rt.method+" "+rt.path+" "+cluster), func(t *testing.T) {
				e := newAccessEnv(t)
				if cluster == "akash" {
					e.akashCluster()
				}
				path := e.fill(rt.path, cluster)
				body := walkBodies[rt.method+" "+rt.path]
				if body == "" && !safeMethod(rt.method) {
					body = "{}"
				}
				before := e.accessState()
				refusedDone := false
				for _, who := range walkPrincipals {
					want := expect(rt, who, cluster)
					if want == "ok" && !refusedDone {
						if after := e.accessState(); after != before {
							t.Errorf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
						}
						refusedDone = true
					}
					prev := e.lastActivity()
					rec := e.send(req{method: rt.method, path: path, body: body, bearer: e.tokens[who]})
					got, resp := rec.Code, rec.Body.String()
					switch want {
					case "ok":
						if got == 401 || got == 403 || resp == `{"error":"workspace \"a\" not found"}`+"\n" || resp == `{"error":"cluster \"`+cluster+`\" not found"}`+"\n" {
							t.Errorf("%s: %d %s, want it let through", who, got, resp)
						}
					default:
						if fmt.Sprint(got) != want {
							t.Errorf("%s: %d %s, want %s", who, got, resp, want)
						}
					}
					if who == "owner-b" {
						for _, n := range aNames {
							if strings.Contains(resp, n) && !strings.Contains(path+body, n) {
								t.Errorf("owner-b's answer names %q of workspace a: %s", n, resp)
							}
						}
					}
					// The activity log: a row per state-changing request of
					// a principal, none for the unauthenticated.
					last := e.lastActivity()
					switch {
					case safeMethod(rt.method) || want == "401":
						if last.ID != prev.ID {
							t.Errorf("%s: activity row %+v for a read or an unauthenticated request", who, last)
						}
					case last.ID == prev.ID:
						t.Errorf("%s: no activity row", who)
					default:
						wantResult := "ok"
						switch {
						case want != "ok":
							wantResult = "refused"
						case got >= 300:
							wantResult = "failed"
						}
						wantName := who
						if who == "controller" {
							wantName = "unverified-service-account" // no Akash provider: not verified
							if want == "ok" {
								wantName = "pullgate:akash"
							}
						}
						if last.Action != rt.action || last.Result != wantResult || last.Principal != wantName || last.Status != got {
							t.Errorf("%s: activity %+v, want action %s result %s status %d", who, last, rt.action, wantResult, got)
						}
						if who == "owner-b" && want == "404" && last.Workspace != "" {
							t.Errorf("owner-b's refusal is in workspace %q's activity", last.Workspace)
						}
					}
				}
			})
		}
	}
	slices.Sort(public)
	if want := []string{"DELETE /api/v1/session", "GET /api/v1/session", "POST /api/v1/session", "POST /api/v1/tenant/challenge", "POST /api/v1/tenant/login"}; !slices.Equal(public, want) {
		t.Errorf("public routes %v, want only %v", public, want)
	}
}

// TestCheckRoute: New refuses a route table entry without its rule.
func TestCheckRoute(t *testing.T) {
	nop := func(*server, http.ResponseWriter, *http.Request) error { return nil }
	for _, rt := range []route{
		{"GET", "/api/v1/x", rule{}, "", nop},
		{"POST", "/api/v1/x", signedIn, "", nop},
		{"GET", pWorkspace + "/x", signedIn, "", nop},
		{"GET", pWorkspace + "/x", public, "", nop},
		{"GET", pCluster + "/x", viewer, "", nop},
		{"GET", pWorkspace + "/x", rule{kind: ruleWorkspace}, "", nop},
	} {
		if err := checkRoute(&rt); err == nil {
			t.Errorf("checkRoute(%s %s %s) passed", rt.method, rt.path, rt.access)
		}
	}
	for i := range routes {
		if err := checkRoute(&routes[i]); err != nil {
			t.Error(err)
		}
	}
}

// TestMemberListsOwnOnly: the lists every signed-in principal may call
// show a member its own workspaces' objects only, and another workspace's
// cluster answers as one that does not exist.
func TestMemberListsOwnOnly(t *testing.T) {
	e := newAccessEnv(t)
	if err := e.st.AppendAudit(context.Background(), []store.AuditEvent{{Workspace: "b", Install: "b-web", Repository: "b-org/app"}}); err != nil {
		t.Fatal(err)
	}
	b := e.tokens["owner-b"]
	get := func(path string) (int, string) {
		rec := e.send(req{method: "GET", path: path, bearer: b})
		return rec.Code, rec.Body.String()
	}
	noA := func(what, body string) {
		t.Helper()
		for _, n := range append(aNames, `"a"`) {
			if strings.Contains(body, n) {
				t.Errorf("%s shows owner-b %s of workspace a: %s", what, n, body)
			}
		}
	}
	code, body := get("/api/v1/workspaces")
	if code != 200 || !strings.Contains(body, `"name":"b"`) {
		t.Errorf("workspaces: %d %s", code, body)
	}
	noA("workspace list", body)

	code, body = get("/api/v1/clusters")
	var cl ClusterList
	if code != 200 || jsonUnmarshal(body, &cl) != nil || len(cl.Clusters) != 2 {
		t.Fatalf("clusters: %d %s", code, body)
	}
	noA("cluster list", body)
	for _, c := range cl.Clusters {
		switch c.Name {
		case "b-edge":
			if c.Workspace != "b" || c.SAAudience == "" {
				t.Errorf("own cluster, full view: %+v", c)
			}
		case "shared":
			if c != (Cluster{Name: "shared", Shared: true}) {
				t.Errorf("shared cluster shows more than its name: %+v", c)
			}
		default:
			t.Errorf("cluster %q listed", c.Name)
		}
	}
	// Of a shared cluster a member sees its name; the other fields are
	// zero (the real audience is "pullgate").
	if code, body = get("/api/v1/clusters/shared"); code != 200 || !strings.Contains(body, `"sa_audience":""`) {
		t.Errorf("shared cluster: %d %s", code, body)
	}

	code, body = get("/api/v1/audit")
	if code != 200 || !strings.Contains(body, "b-web") {
		t.Errorf("audit: %d %s", code, body)
	}
	noA("audit", body)
	if code, body = get("/api/v1/audit?workspace=a"); code != 404 || body != `{"error":"workspace \"a\" not found"}`+"\n" {
		t.Errorf("audit of a: %d %s", code, body)
	}
	if code, body = get("/api/v1/audit?workspace=nope"); code != 404 || body != `{"error":"workspace \"nope\" not found"}`+"\n" {
		t.Errorf("audit of nope: %d %s", code, body)
	}
	code, body = get("/api/v1/tokens")
	if code != 200 || strings.Count(body, `"id"`) != 1 {
		t.Errorf("tokens: %d %s", code, body)
	}
	noA("token list", body)
	// The admin's lists have everything.
	var all ClusterList
	e.must("GET", "/api/v1/clusters", "", 200, &all)
	if len(all.Clusters) != 3 {
		t.Errorf("admin's clusters: %+v", all)
	}

	// Binding to a's cluster answers as binding to none.
	before := e.accessState()
	for _, r := range []req{
		{method: "POST", path: "/api/v1/workspaces/b/installs", body: `{"name":"x","all_repos":true,"cluster":"a-edge","namespace":"n"}`},
		{method: "PATCH", path: "/api/v1/workspaces/b/installs/b-web", body: `{"cluster":"a-edge"}`},
		{method: "POST", path: "/api/v1/workspaces/b/sdl-imports", body: `{"sdl":"version: \"2.0\"\n","cluster":"a-edge","namespace":"n"}`},
	} {
		r.bearer = b
		rec := e.send(r)
		r.body = strings.ReplaceAll(r.body, "a-edge", "no-such")
		rec2 := e.send(r)
		if rec.Code != rec2.Code || rec.Body.String() != strings.ReplaceAll(rec2.Body.String(), "no-such", "a-edge") || rec.Code < 400 {
			t.Errorf("%s %s with a's cluster: %d %s; with none: %d %s", r.method, r.path, rec.Code, rec.Body, rec2.Code, rec2.Body)
		}
		noA(r.method+" "+r.path, strings.ReplaceAll(rec.Body.String(), "a-edge", ""))
	}
	if after := e.accessState(); after != before {
		t.Errorf("refused bindings changed state:\n%s\n%s", before, after)
	}
	// Binding to the shared cluster is allowed.
	if rec := e.send(req{method: "POST", path: "/api/v1/workspaces/b/installs", body: `{"name":"x","all_repos":true,"cluster":"shared","namespace":"b-ns"}`, bearer: b}); rec.Code != 201 {
		t.Errorf("bind to shared: %d %s", rec.Code, rec.Body)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
