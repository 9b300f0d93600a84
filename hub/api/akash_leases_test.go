package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testsa"
	"github.com/pullgate/pullgate/pkg/akash"
)

const leasesPath = "/api/v1/clusters/akash/akash/leases"

// The lease routes take the cluster's own binding controller only: its
// service account, a pod-bound token of the cluster's issuer, on a
// cluster with a provider. Every refusal changes nothing.
func TestAkashControllerAuth(t *testing.T) {
	e := newAccessEnv(t)
	e.akashCluster()
	// A second Akash cluster with an issuer of its own.
	other := testsa.New(t)
	if _, err := e.st.CreateCluster(context.Background(), store.Cluster{Name: "akash-2", SAJWKS: other.JWKS(),
		AkashProvider: walkProvider, AkashController: "pullgate:akash"}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	body := `{"leases":[` + walkLeaseJSON + `]}`
	before := e.accessState()
	for _, tc := range []struct {
		name, tok string
		code      int
	}{
		{"other service account", e.sa.Token(t, "pullgate", "other", testsa.Opts{}), 403},
		{"other namespace", e.sa.Token(t, "tenant", "akash", testsa.Opts{}), 403},
		{"not bound to a pod", e.sa.Token(t, "pullgate", "akash", testsa.Opts{Unbound: true}), 401},
		{"other cluster's issuer", other.Token(t, "pullgate", "akash", testsa.Opts{}), 401},
		{"wrong audience", e.sa.Token(t, "pullgate", "akash", testsa.Opts{Audience: "vault"}), 401},
		{"member's API token", e.tokens["owner-a"], 403},
	} {
		for _, r := range []req{
			{method: "PUT", path: leasesPath, body: body},
			{method: "PUT", path: leasesPath + "/" + walkLease.Namespace(), body: walkLeaseJSON},
			{method: "DELETE", path: leasesPath + "/" + walkLease.Namespace()},
		} {
			r.bearer = tc.tok
			if rec := e.send(r); rec.Code != tc.code {
				t.Errorf("%s: %s %s: %d %s, want %d", tc.name, r.method, r.path, rec.Code, rec.Body, tc.code)
			} else if strings.Contains(rec.Body.String(), tc.tok) {
				t.Errorf("%s: the answer echoes the token", tc.name)
			}
		}
	}
	// The controller of one cluster cannot report leases for another.
	if rec := e.send(req{method: "PUT", path: "/api/v1/clusters/akash-2/akash/leases", body: body, bearer: e.tokens["controller"]}); rec.Code != 401 {
		t.Errorf("controller of akash on akash-2: %d %s", rec.Code, rec.Body)
	}
	if after := e.accessState(); after != before {
		t.Fatalf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if l := e.logs.String(); strings.Contains(l, e.tokens["controller"]) {
		t.Fatal("the log holds a service-account token")
	}
	// The controller itself.
	var res PutAkashLeasesResult
	rec := e.send(req{method: "PUT", path: leasesPath, body: body, bearer: e.tokens["controller"]})
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &res) != nil || res.Leases != 1 {
		t.Fatalf("controller PUT: %d %s", rec.Code, rec.Body)
	}
	last := e.lastActivity()
	if last.Action != "akash.leases_sync" || last.PrincipalKind != PrincipalAkashController || last.Principal != "pullgate:akash" || last.Result != "ok" {
		t.Fatalf("activity %+v", last)
	}
}

// A lease whose namespace is not its id's hash, or of another provider,
// is refused (400) and changes nothing; the full set is all or nothing.
func TestAkashLeaseChecks(t *testing.T) {
	e := newAccessEnv(t)
	e.akashCluster()
	ctl := e.tokens["controller"]
	wrongNS := akash.LeaseID{Owner: walkLease.Owner, DSeq: 11, GSeq: 1, OSeq: 1, Provider: walkProvider}
	otherProv := walkLease
	otherProv.Provider = testAkashAddress(9)
	otherJSON, _ := json.Marshal(otherProv)
	before := e.accessState()
	for _, r := range []req{
		{method: "PUT", path: leasesPath + "/" + wrongNS.Namespace(), body: walkLeaseJSON},
		{method: "PUT", path: leasesPath + "/" + otherProv.Namespace(), body: string(otherJSON)},
		{method: "PUT", path: leasesPath, body: `{"leases":[` + walkLeaseJSON + `,` + string(otherJSON) + `]}`},
		{method: "PUT", path: leasesPath + "/" + walkLease.Namespace(), body: `{"owner":"` + walkLease.Owner + `","dseq":0,"gseq":1,"oseq":1,"provider":"` + walkProvider + `"}`},
		{method: "PUT", path: leasesPath + "/" + walkLease.Namespace(), body: `{"owner":"cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud","dseq":10,"gseq":1,"oseq":1,"provider":"` + walkProvider + `"}`},
	} {
		r.bearer = ctl
		if rec := e.send(r); rec.Code != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", r.method, r.path, r.body, rec.Code, rec.Body)
		}
	}
	if after := e.accessState(); after != before {
		t.Fatalf("refused leases changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if rec := e.send(req{method: "DELETE", path: leasesPath + "/" + walkLease.Namespace(), bearer: ctl}); rec.Code != 404 {
		t.Fatalf("DELETE of an unknown lease: %d %s", rec.Code, rec.Body)
	}
	var got AkashLease
	rec := e.send(req{method: "PUT", path: leasesPath + "/" + walkLease.Namespace(), body: walkLeaseJSON, bearer: ctl})
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Namespace != walkLease.Namespace() || got.Cluster != "akash" ||
		got.DSeq != 10 || got.CreatedAt.IsZero() || strings.Contains(rec.Body.String(), `"workspace"`) {
		t.Fatalf("PUT one: %d %s", rec.Code, rec.Body)
	}
}

// A workspace sees its own account's leases only; the admin sees a
// cluster's; a viewer cannot change an install's Akash scope; akash and
// a cluster binding exclude each other.
func TestAkashLeaseViewsAndScope(t *testing.T) {
	rv := &recordingRevoker{}
	e := newAccessEnv(t, func(d *Deps) { d.Revoker = rv })
	c := e.akashCluster()
	ctx := context.Background()
	b := e.tokens["owner-b"]
	// Workspace ta is walkLease's owner's (as a tenant login makes it);
	// viewer-a and operator-a are its members too.
	if _, _, err := e.st.EnsureAkashAccount(ctx, walkLease.Owner, "ta"); err != nil {
		t.Fatal(err)
	}
	e.addMember("ta", "viewer-a", "viewer")
	e.addMember("ta", "operator-a", "operator")
	leaseB := akash.LeaseID{Owner: testAkashAddress(3), DSeq: 20, GSeq: 1, OSeq: 1, Provider: walkProvider}
	if _, _, err := e.st.EnsureAkashAccount(ctx, leaseB.Owner, "tenant-b2"); err != nil {
		t.Fatal(err)
	}
	lbJSON, _ := json.Marshal(leaseB)
	if rec := e.send(req{method: "PUT", path: leasesPath, body: `{"leases":[` + walkLeaseJSON + `,` + string(lbJSON) + `]}`, bearer: e.tokens["controller"]}); rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	if got := rv.calls[len(rv.calls)-1]; got != "leases akash" {
		t.Fatalf("agents told %q, want a lease notice", got)
	}
	// The controller's periodic resync of an unchanged set tells agents
	// nothing.
	calls := len(rv.calls)
	if rec := e.send(req{method: "PUT", path: leasesPath, body: `{"leases":[` + walkLeaseJSON + `,` + string(lbJSON) + `,` + walkLeaseJSON + `]}`, bearer: e.tokens["controller"]}); rec.Code != 200 ||
		rec.Body.String() != `{"leases":2,"added":[],"removed":[]}`+"\n" {
		t.Fatalf("PUT again: %d %s", rec.Code, rec.Body)
	}
	if len(rv.calls) != calls {
		t.Fatalf("unchanged set notified agents: %v", rv.calls[calls:])
	}
	var all AkashLeaseList
	e.must("GET", leasesPath, "", 200, &all)
	if len(all.Leases) != 2 {
		t.Fatalf("admin's view: %+v", all)
	}
	get := func(path, tok string) (int, string) {
		rec := e.send(req{method: "GET", path: path, bearer: tok})
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/api/v1/workspaces/ta/akash/leases", e.tokens["viewer-a"]); code != 200 || !strings.Contains(body, walkLease.Namespace()) || strings.Contains(body, leaseB.Namespace()) {
		t.Fatalf("ta's leases for viewer-a: %d %s", code, body)
	}
	if code, body := get("/api/v1/workspaces/ta/akash/leases", b); code != 404 || strings.Contains(body, walkLease.Namespace()) {
		t.Fatalf("a's leases for owner-b: %d %s", code, body)
	}
	if code, body := get("/api/v1/workspaces/b/akash/leases", b); code != 200 || body != `{"leases":[]}`+"\n" {
		t.Fatalf("b's leases (b's account has none): %d %s", code, body)
	}
	if code, _ := get(leasesPath, e.tokens["owner-a"]); code != 403 {
		t.Fatalf("cluster's leases for a member: %d", code)
	}

	// Install scope.
	e.must("POST", "/api/v1/workspaces/ta/installs", `{"name":"ak","all_repos":true,"akash":"all"}`, 201, nil)
	var in Install
	e.must("GET", "/api/v1/workspaces/ta/installs/ak", "", 200, &in)
	if in.Akash != "all" || in.Cluster != "" {
		t.Fatalf("install: %+v", in)
	}
	for _, body := range []string{
		`{"name":"x","all_repos":true,"akash":"all","cluster":"shared","namespace":"n"}`,
		`{"name":"x","all_repos":true,"akash":"all","namespace":"n"}`,
		`{"name":"x","all_repos":true,"akash":"everything"}`,
		`{"name":"x","all_repos":true,"akash":"007"}`,
	} {
		if code, b := e.do("POST", "/api/v1/workspaces/a/installs", body); code != 400 {
			t.Errorf("create %s: %d %s, want 400", body, code, b)
		}
	}
	if code, b := e.do("PATCH", "/api/v1/workspaces/a/installs/a-web", `{"akash":"all"}`); code != 400 || !strings.Contains(b, "akash") {
		t.Errorf("akash on a cluster-bound install: %d %s, want 400", code, b)
	}
	rec := e.send(req{method: "PATCH", path: "/api/v1/workspaces/ta/installs/ak", body: `{"akash":"10"}`, bearer: e.tokens["viewer-a"]})
	if rec.Code != 403 {
		t.Fatalf("viewer changing the akash scope: %d %s", rec.Code, rec.Body)
	}
	e.must("GET", "/api/v1/workspaces/ta/installs/ak", "", 200, &in)
	if in.Akash != "all" {
		t.Fatalf("scope after the viewer's refused change: %q", in.Akash)
	}
	var up Install
	rec = e.send(req{method: "PATCH", path: "/api/v1/workspaces/ta/installs/ak", body: `{"akash":"10"}`, bearer: e.tokens["operator-a"]})
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &up) != nil || up.Akash != "10" || up.Generation != in.Generation+1 {
		t.Fatalf("operator changing the scope: %d %s", rec.Code, rec.Body)
	}
	// The served copies follow: the cluster serves a's install in a's
	// lease only.
	served, err := e.st.InstallsByCluster(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var leases []string
	for _, s := range served {
		if s.Lease != "" {
			leases = append(leases, s.Name+"@"+s.Lease)
		}
	}
	if strings.Join(leases, ",") != "ak@"+walkLease.Namespace() {
		t.Fatalf("lease copies %v", leases)
	}

	// Cluster settings: admin only, validated.
	if rec := e.send(req{method: "PATCH", path: "/api/v1/clusters/akash", body: `{"akash_provider":""}`, bearer: e.tokens["owner-a"]}); rec.Code != 403 {
		t.Fatalf("member PATCH cluster: %d", rec.Code)
	}
	if code, b := e.do("PATCH", "/api/v1/clusters/akash", `{"akash_controller":"nope"}`); code != 400 {
		t.Fatalf("bad controller: %d %s", code, b)
	}
	if code, b := e.do("PATCH", "/api/v1/clusters/a-edge", `{"akash_provider":"`+walkProvider+`","akash_controller":"p:q"}`); code != 400 {
		t.Fatalf("akash on a single-workspace cluster: %d %s", code, b)
	}
	var cv Cluster
	e.must("GET", "/api/v1/clusters/akash", "", 200, &cv)
	if cv.AkashProvider != walkProvider || cv.AkashController != "pullgate:akash" {
		t.Fatalf("cluster view %+v", cv)
	}
	// Deleting the lease ends its binding at once.
	if rec := e.send(req{method: "DELETE", path: leasesPath + "/" + walkLease.Namespace(), bearer: e.tokens["controller"]}); rec.Code != 204 {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	a, _ := e.st.GetWorkspace(ctx, "ta")
	if ok, err := e.st.AkashLeaseBound(ctx, c.ID, walkLease.Namespace(), a.ID); err != nil || ok {
		t.Fatalf("lease still bound after DELETE: %v %v", ok, err)
	}
}

// The credential import: off by default; on, it puts the manifest's
// credentials into the lease owner's workspace (made for it), an Akash
// install for the lease's dseq, and answers the hub form of each image;
// the password is in no answer, log line, activity row or database byte.
func TestAkashCredentialImport(t *testing.T) {
	pw := distinctiveSecret()
	body := `{"services":[{"name":"web","images":["ghcr.io/org/app:1","ghcr.io/org/side:2"],"credentials":{"host":"ghcr.io","username":"bot","password":"` + pw + `"}}]}`
	path := leasesPath + "/" + walkLease.Namespace() + "/credentials"

	off := newAccessEnv(t, func(d *Deps) { d.AkashImportCredentials = false })
	off.akashCluster()
	if rec := off.send(req{method: "PUT", path: leasesPath, body: `{"leases":[` + walkLeaseJSON + `]}`, bearer: off.tokens["controller"]}); rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	if rec := off.send(req{method: "POST", path: path, body: body, bearer: off.tokens["controller"]}); rec.Code != 403 || !strings.Contains(rec.Body.String(), "credential import is off") {
		t.Fatalf("import while off: %d %s", rec.Code, rec.Body)
	}

	rv := &recordingRevoker{}
	e := newAccessEnv(t, func(d *Deps) { d.Revoker = rv; d.PublicURL = "https://hub.example.com" })
	e.akashCluster()
	ctl := e.tokens["controller"]
	if rec := e.send(req{method: "POST", path: path, body: body, bearer: ctl}); rec.Code != 404 {
		t.Fatalf("import for an unknown lease: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send(req{method: "PUT", path: leasesPath, body: `{"leases":[` + walkLeaseJSON + `]}`, bearer: ctl}); rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	for _, bad := range []string{
		`{"services":[{"name":"web","images":["ghcr.io/org/app:1"],"credentials":{"host":"10.0.0.1","username":"bot","password":"` + pw + `"}}]}`,
		`{"services":[{"name":"web","images":[],"credentials":{"host":"ghcr.io","username":"bot","password":"` + pw + `"}}]}`,
		`{"services":[]}`,
	} {
		if rec := e.send(req{method: "POST", path: path, body: bad, bearer: ctl}); rec.Code != 400 {
			t.Errorf("bad import %s: %d %s", bad, rec.Code, rec.Body)
		}
	}
	rec := e.send(req{method: "POST", path: path, body: body, bearer: ctl})
	var res AkashCredentialsResult
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &res) != nil {
		t.Fatalf("import: %d %s", rec.Code, rec.Body)
	}
	wantWS := store.DefaultAkashWorkspace(walkLease.Owner)
	if res.Workspace != wantWS || res.Hub != "hub.example.com" || len(res.Images) != 2 ||
		res.Images["ghcr.io/org/app:1"] != "hub.example.com/ghcr.io/org/app:1" {
		t.Fatalf("import result %+v", res)
	}
	in, err := e.st.GetInstall(context.Background(), wantWS, "sdl-10")
	if err != nil || in.Akash != "10" || in.ClusterID != "" || strings.Join(in.Repos, ",") != "ghcr.io/org/app,ghcr.io/org/side" {
		t.Fatalf("install %+v, %v", in, err)
	}
	creds, _ := e.st.ListCredentials(context.Background(), wantWS)
	if len(creds) != 1 || creds[0].Host != "ghcr.io" || creds[0].Username != "bot" {
		t.Fatalf("credentials %+v", creds)
	}
	last := e.lastActivity()
	if last.Action != "akash.credentials_import" || last.Workspace != wantWS || last.Principal != "pullgate:akash" {
		t.Fatalf("activity %+v", last)
	}
	// Again: nothing changes.
	if rec := e.send(req{method: "POST", path: path, body: body, bearer: ctl}); rec.Code != 200 {
		t.Fatalf("second import: %d %s", rec.Code, rec.Body)
	}
	if in2, _ := e.st.GetInstall(context.Background(), wantWS, "sdl-10"); in2.Generation != in.Generation {
		t.Fatalf("a repeated import changed the install: %+v", in2)
	}
	acts, _ := e.st.QueryActivity(context.Background(), store.ActivityQuery{Limit: store.MaxAuditLimit})
	for _, a := range acts {
		if strings.Contains(a.Target+a.Path, pw) {
			t.Fatalf("activity row holds the password: %+v", a)
		}
	}
	e.assertNoLeak(pw)
}
