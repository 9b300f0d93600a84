package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/internal/testsa"
)

func TestClusters(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces", `{"name":"other"}`, 201, nil)
	var jt JoinToken
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"acme"}`, 201, &jt)
	if !strings.HasPrefix(jt.JoinToken, "pgj1.") || jt.Cluster.Workspace != "acme" || jt.Cluster.Shared {
		t.Fatalf("create: %+v", jt)
	}
	var again JoinToken
	e.must("POST", "/api/v1/clusters/edge/join-token", "", 200, &again)
	if again.JoinToken == jt.JoinToken || !strings.HasPrefix(again.JoinToken, "pgj1.") {
		t.Fatal("rotate returned the same token")
	}
	var list ClusterList
	e.must("GET", "/api/v1/clusters", "", 200, &list)
	if len(list.Clusters) != 1 || strings.Contains(fmt.Sprint(list), "pgj1.") {
		t.Fatalf("list: %+v", list)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"name":"edge"}`, "already exists"},
		{`{"name":"x","workspace":"nope"}`, "not found"},
		{`{"name":"x","sa_jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`, "sa_jwks"},
		{`{"name":"x","sa_issuer":"http://k8s"}`, "sa_issuer"},
		{`{"name":"Bad"}`, "name"},
	} {
		code, body := e.do("POST", "/api/v1/clusters", tc.body)
		if code < 400 || code >= 500 || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d %s", tc.body, code, body)
		}
	}
	// A single-workspace cluster takes installs of its workspace only.
	code, body := e.do("POST", "/api/v1/workspaces/other/installs", `{"name":"web","cluster":"edge","all_repos":true}`)
	if code != 400 || !strings.Contains(body, "belongs to workspace") {
		t.Fatalf("foreign install: %d %s", code, body)
	}
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","cluster":"edge","all_repos":true}`, 201, nil)
	var nodes NodeList
	e.must("GET", "/api/v1/clusters/edge/nodes", "", 200, &nodes)
	if code, _ := e.do("POST", "/api/v1/clusters/edge/nodes/node_x/revoke", ""); code != 404 {
		t.Fatalf("revoke unknown node: %d", code)
	}
	// Installs are bound: the delete is refused, listing them, unless forced.
	if code, body := e.do("DELETE", "/api/v1/clusters/edge", ""); code != 409 || !strings.Contains(body, "acme/web") || !strings.Contains(body, "force") {
		t.Fatalf("delete a cluster with installs: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/api/v1/clusters/edge?force=maybe", ""); code != 400 || !strings.Contains(body, "force") {
		t.Fatalf("bad force: %d %s", code, body)
	}
	var del DeleteClusterResult
	e.must("DELETE", "/api/v1/clusters/edge?force=true", "", 200, &del)
	if len(del.UnboundInstalls) != 1 || del.UnboundInstalls[0] != "acme/web" {
		t.Fatalf("forced delete: %+v", del)
	}
	if code, _ := e.do("GET", "/api/v1/clusters/edge", ""); code != 404 {
		t.Fatal("cluster still there")
	}
	var in Install
	e.must("GET", "/api/v1/workspaces/acme/installs/web", "", 200, &in)
	if in.Cluster != "" || in.Generation != 2 {
		t.Fatalf("install after forced delete: %+v", in)
	}
	// A new cluster of the same name has nothing bound to it.
	e.must("POST", "/api/v1/clusters", `{"name":"edge","workspace":"other"}`, 201, nil)
	e.must("DELETE", "/api/v1/clusters/edge", "", 200, &del)
	if len(del.UnboundInstalls) != 0 {
		t.Fatalf("re-created cluster had installs: %+v", del)
	}
}

func TestJoinTokenLimits(t *testing.T) {
	e := newEnv(t)
	var jt JoinToken
	e.must("POST", "/api/v1/clusters", `{"name":"edge","join_token_uses":1,"join_token_ttl":"1h"}`, 201, &jt)
	if jt.Cluster.JoinTokenUsesLeft == nil || *jt.Cluster.JoinTokenUsesLeft != 1 || jt.Cluster.JoinTokenExpiresAt == nil ||
		jt.Cluster.JoinTokenExpiresAt.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("create: %+v", jt.Cluster)
	}
	jt = JoinToken{}
	e.must("POST", "/api/v1/clusters/edge/join-token", `{"join_token_uses":3}`, 200, &jt)
	if jt.Cluster.JoinTokenUsesLeft == nil || *jt.Cluster.JoinTokenUsesLeft != 3 || jt.Cluster.JoinTokenExpiresAt != nil {
		t.Fatalf("rotate: %+v", jt.Cluster)
	}
	jt = JoinToken{}
	e.must("POST", "/api/v1/clusters/edge/join-token", "", 200, &jt)
	if jt.Cluster.JoinTokenUsesLeft != nil {
		t.Fatalf("rotate without limits: %+v", jt.Cluster)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/clusters", `{"name":"x","join_token_uses":-1}`, "join_token_uses"},
		{"POST", "/api/v1/clusters", `{"name":"x","join_token_ttl":"soon"}`, "join_token_ttl"},
		{"POST", "/api/v1/clusters/edge/join-token", `{"join_token_ttl":"-1h"}`, "join_token_ttl"},
	} {
		if code, body := e.do(tc.method, tc.path, tc.body); code != 400 || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d %s", tc.body, code, body)
		}
	}
	if code, _ := e.do("GET", "/api/v1/clusters/x", ""); code != 404 {
		t.Fatal("a refused create stored a cluster")
	}
}

func TestClusterKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := testsa.New(t), testsa.New(t)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	var keys ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil || keys.Proposal != nil || !keys.Shared {
		t.Fatalf("fresh cluster: %+v", keys)
	}
	if code, body := e.do("POST", "/api/v1/clusters/shared/jwks/approve", ""); code != 400 || !strings.Contains(body, "no proposed") {
		t.Fatalf("approve nothing: %d %s", code, body)
	}
	// An agent's offer (as the token service records it).
	c, _ := e.st.GetCluster(ctx, "shared")
	n, _ := e.st.CreateNode(ctx, c.ID, "worker-1", []byte("h"))
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: a.JWKS(), NodeID: n.ID}); err != nil {
		t.Fatal(err)
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	p := keys.Proposal
	if keys.Approved != nil || p == nil || len(p.Keys) != 1 || p.Keys[0].Thumbprint == "" || p.Keys[0].Kty != "RSA" ||
		p.ProposedBy != n.ID || p.ProposedByName != "worker-1" || p.ProposedAt.IsZero() {
		t.Fatalf("proposal: %+v", keys)
	}
	var list ClusterList
	e.must("GET", "/api/v1/clusters", "", 200, &list)
	if list.Clusters[0].SAKeys || !list.Clusters[0].SAKeysPending {
		t.Fatalf("list: %+v", list.Clusters[0])
	}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{}`, 400, "thumbprints: required"},
		{`{"issuer":"` + testsa.DefaultIssuer + `"}`, 400, "thumbprints: required"},
		{`{"thumbprints":["nope"]}`, 409, "thumbprints"},
		{`{"kids":["nope"],"thumbprints":["` + p.Keys[0].Thumbprint + `"]}`, 409, "key ids"},
		{`{"thumbprints":["` + p.Keys[0].Thumbprint + `"]}`, 400, "names no issuer"},
		{`{"thumbprints":["` + p.Keys[0].Thumbprint + `"],"issuer":"http://k8s"}`, 400, "https://"},
	} {
		if code, body := e.do("POST", "/api/v1/clusters/shared/jwks/approve", tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Fatalf("approve %s: %d %s", tc.body, code, body)
		}
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil {
		t.Fatal("a refused approve approved keys")
	}
	keys = ClusterKeys{}
	e.must("POST", "/api/v1/clusters/shared/jwks/approve", `{"thumbprints":["`+p.Keys[0].Thumbprint+`"],"kids":["`+p.Keys[0].KID+`"],"issuer":"`+testsa.DefaultIssuer+`"}`, 200, &keys)
	if keys.Approved == nil || keys.Approved.Issuer != testsa.DefaultIssuer || keys.Proposal != nil || keys.Approved.Keys[0].Thumbprint != p.Keys[0].Thumbprint {
		t.Fatalf("approved: %+v", keys)
	}

	// Set replaces the keys (rotation: several at once).
	both := `{"keys":[` + strings.TrimSuffix(strings.TrimPrefix(string(a.JWKS()), `{"keys":[`), `]}`) + "," +
		strings.TrimSuffix(strings.TrimPrefix(string(b.JWKS()), `{"keys":[`), `]}`) + `]}`
	keys = ClusterKeys{}
	e.must("PUT", "/api/v1/clusters/shared/jwks", `{"jwks":`+both+`,"issuer":"https://issuer.example"}`, 200, &keys)
	if len(keys.Approved.Keys) != 2 || keys.Approved.Issuer != "https://issuer.example" {
		t.Fatalf("set: %+v", keys)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"issuer":"https://k"}`, "jwks"},
		{`{"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]},"issuer":"https://k"}`, "jwks"},
		{`{"jwks":` + string(b.JWKS()) + `}`, "issuer"},
		{`{"jwks":` + string(b.JWKS()) + `,"issuer":"http://k"}`, "issuer"},
	} {
		if code, body := e.do("PUT", "/api/v1/clusters/shared/jwks", tc.body); code != 400 || !strings.Contains(body, tc.want) {
			t.Fatalf("set %s: %d %s", tc.body, code, body)
		}
	}
	if code, _ := e.do("PUT", "/api/v1/clusters/nope/jwks", `{"jwks":`+string(b.JWKS())+`,"issuer":"https://k"}`); code != 404 {
		t.Fatalf("set on unknown cluster: %d", code)
	}
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if len(keys.Approved.Keys) != 2 {
		t.Fatal("a refused set changed the keys")
	}
}

// A node that replaces the proposal between the operator's show and approve
// gets nothing approved: approval names the thumbprints that were shown.
func TestClusterKeysSwappedProposalRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	honest, evil := testsa.New(t), testsa.New(t)
	e.must("POST", "/api/v1/clusters", `{"name":"shared"}`, 201, nil)
	c, _ := e.st.GetCluster(ctx, "shared")
	n1, _ := e.st.CreateNode(ctx, c.ID, "worker-1", []byte("h1"))
	n2, _ := e.st.CreateNode(ctx, c.ID, "worker-2", []byte("h2"))
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: honest.JWKS(), Issuer: testsa.DefaultIssuer, NodeID: n1.ID}); err != nil {
		t.Fatal(err)
	}
	var shown ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &shown)
	if err := e.st.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: evil.JWKS(), Issuer: testsa.DefaultIssuer, NodeID: n2.ID}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{}`, `{"thumbprints":["` + shown.Proposal.Keys[0].Thumbprint + `"]}`} {
		if code, out := e.do("POST", "/api/v1/clusters/shared/jwks/approve", body); code < 400 {
			t.Fatalf("approve %s after the proposal was swapped: %d %s", body, code, out)
		}
	}
	var keys ClusterKeys
	e.must("GET", "/api/v1/clusters/shared/jwks", "", 200, &keys)
	if keys.Approved != nil {
		t.Fatalf("the swapped proposal was approved: %+v", keys.Approved)
	}
}
