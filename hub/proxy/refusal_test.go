package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// Refused pulls are in the audit trail with why, and with the install
// when the token was authentic; the token itself never is.
func TestRefusedPullsAudited(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "refusal-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	ctx := context.Background()
	off := false
	manifest := "/v2/" + upstreamHost + "/org/app/manifests/v1"

	for _, tc := range []struct {
		name, path, reason, install string
		status                      int
		// tok returns the token to present, after changing state.
		tok func(f *fixture, ws store.Workspace, good string) string
	}{
		{"garbage", manifest, "malformed", "", 401, func(*fixture, store.Workspace, string) string { return "garbage" }},
		{"tampered", manifest, "signature", "", 401, func(_ *fixture, _ store.Workspace, good string) string {
			p := strings.Split(good, ".")
			return p[0] + "." + p[1] + "x." + p[2]
		}},
		{"foreign key", manifest, "unknown_key", "", 401, func(f *fixture, ws store.Workspace, _ string) string {
			ring := token.NewKeyring()
			k, _ := token.NewKey()
			ring.Add(k, true)
			in, _ := f.store.GetInstall(ctx, ws.Name, "web")
			tok, _, _ := ring.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Generation: in.Generation}, time.Minute)
			return tok
		}},
		{"expired", manifest, "expired", "web", 401, func(f *fixture, _ store.Workspace, good string) string {
			f.clock.Store(time.Now().Add(time.Hour).UnixNano())
			return good
		}},
		{"install disabled", manifest, "install_disabled", "web", 401, func(f *fixture, ws store.Workspace, good string) string {
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &off}))
			return good
		}},
		{"install changed", manifest, "install_changed", "web", 401, func(f *fixture, ws store.Workspace, good string) string {
			repos := []string{upstreamHost + "/org/*"}
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Repos: &repos}))
			return good
		}},
		{"install deleted", manifest, "install_deleted", "", 401, func(f *fixture, ws store.Workspace, good string) string {
			f.mustErr(f.store.DeleteInstall(ctx, ws.Name, "web"))
			return good
		}},
		{"credential disabled", manifest, "credential_disabled", "web", 403, func(f *fixture, ws store.Workspace, good string) string {
			f.must(f.store.UpdateCredential(ctx, ws.Name, "reg", store.CredentialUpdate{Enabled: &off}))
			return good
		}},
		{"node revoked", manifest, "node_revoked", "web", 401, func(f *fixture, ws store.Workspace, _ string) string {
			c, err := f.store.CreateCluster(ctx, store.Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("h"))
			f.mustErr(err)
			n, err := f.store.CreateNode(ctx, c.ID, "n1", []byte("h"))
			f.mustErr(err)
			in, _ := f.store.GetInstall(ctx, ws.Name, "web")
			tok, _, _ := f.keys.Mint(token.Claims{Install: in.ID, Workspace: ws.ID, Cluster: c.ID, Node: n.ID, Generation: in.Generation}, time.Minute)
			f.must(f.store.RevokeNode(ctx, "edge", "n1"))
			return tok
		}},
		{"not allowed", "/v2/" + upstreamHost + "/secret/app/manifests/v1", "not_allowed", "web", 403, func(_ *fixture, _ store.Workspace, good string) string { return good }},
		{"no credential", "/v2/other.example/org/app/manifests/v1", "no_credential", "web", 403, func(_ *fixture, _ store.Workspace, good string) string { return good }},
		{"token endpoint", "/auth/token?service=pullgate", "install_disabled", "web", 401, func(f *fixture, ws store.Workspace, good string) string {
			f.must(f.store.UpdateInstall(ctx, ws.Name, "web", store.InstallUpdate{Enabled: &off}))
			return good
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ws := f.workspace("acme")
			f.credential(ws, "reg", upstreamHost, up, up.Password)
			f.install(ws, "web", upstreamHost+"/org/*", "other.example/org/*")
			good := f.token(ws, "web", 10*time.Minute)
			tok := tc.tok(f, ws, good)
			resp := f.get(http.MethodGet, tc.path, tok)
			if body := readBody(t, resp); resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			evs := f.audit.all()
			if len(evs) != 1 {
				t.Fatalf("%d audit events, want 1: %+v", len(evs), evs)
			}
			ev := evs[0]
			if ev.Reason != tc.reason || ev.Status != tc.status || ev.ClientAddr == "" {
				t.Errorf("audit event %+v, want reason %s, status %d", ev, tc.reason, tc.status)
			}
			if tc.install != "" && (ev.Install != tc.install || ev.Workspace != "acme") {
				t.Errorf("audit event names workspace %q install %q, want acme/%s", ev.Workspace, ev.Install, tc.install)
			}
			if tc.install == "" && tc.reason != "install_deleted" && (ev.Install != "" || ev.Workspace != "") {
				t.Errorf("unverified token attributed to %q/%q", ev.Workspace, ev.Install)
			}
			if s := fmt.Sprintf("%+v", ev); strings.Contains(s, tok) || strings.Contains(s, good) || strings.Contains(s, "refusal-SECRET") {
				t.Errorf("audit event holds a token or secret: %s", s)
			}
		})
	}

	t.Run("no token is not a refusal", func(t *testing.T) {
		// Every client's first request has no token (to get the challenge).
		f := newFixture(t)
		readBody(t, f.get(http.MethodGet, "/v2/", ""))
		readBody(t, f.get(http.MethodGet, manifest, ""))
		if evs := f.audit.all(); len(evs) != 0 {
			t.Fatalf("audited: %+v", evs)
		}
	})
}
