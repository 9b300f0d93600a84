package api

import (
	"testing"
)

func TestMintWithoutKeyring(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Keyring = nil })
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs", `{"name":"web","all_repos":true}`, 201, nil)
	e.must("POST", "/api/v1/workspaces/acme/installs/web/tokens", "", 501, nil)
}
