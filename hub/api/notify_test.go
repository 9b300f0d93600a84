package api

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/pullgate/pullgate/hub/store"
)

type recordingRevoker struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingRevoker) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recordingRevoker) InstallChanged(_ context.Context, in store.Install) error {
	r.add("install " + in.Name)
	return nil
}
func (r *recordingRevoker) InstallAdded(_ context.Context, in store.Install) error {
	r.add("notice " + in.Name)
	return nil
}
func (r *recordingRevoker) CredentialsChanged(context.Context, string) error {
	r.add("credentials")
	return nil
}
func (r *recordingRevoker) NodeRevoked(context.Context, store.Cluster, store.Node) error {
	r.add("node")
	return nil
}
func (r *recordingRevoker) ClusterDeleted(context.Context, store.Cluster) error {
	r.add("cluster")
	return nil
}
func (r *recordingRevoker) AkashLeasesChanged(_ context.Context, c store.Cluster) error {
	r.add("leases " + c.Name)
	return nil
}

// Agents learn of every change that can alter the upstream hosts their
// cluster uses (their containerd mirrors): not only revocations, also a
// new install, an enabled install and a new credential.
func TestChangesNotifyAgents(t *testing.T) {
	rv := &recordingRevoker{}
	e := newEnv(t, func(d *Deps) { d.Revoker = rv })
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/registries", `{"name":"gh","host":"ghcr.io","username":"bot","password":"p"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","repos":["ghcr.io/org/*"]}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/disable", "", 200, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/enable", "", 200, nil)
	e.must("DELETE", "/api/v1/workspaces/acme/installs/web", "", 204, nil)
	// Create and enable are notices (nothing dropped); disable and delete
	// revoke.
	want := "credentials,notice web,install web,notice web,install web"
	if got := strings.Join(rv.calls, ","); got != want {
		t.Fatalf("notices %s, want %s", got, want)
	}
}
