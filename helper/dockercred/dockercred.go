// Package dockercred is the docker-credential-helper side of
// pullgate-credential-provider (invoked as docker-credential-pullgate by
// podman, skopeo, nerdctl, docker ...): `get` answers the install token
// the local agent holds for a registry host; store, erase and list are
// refused, since pullgate credentials come from the node agent.
package dockercred

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/pullgate/pullgate/helper/agentclient"
	"github.com/pullgate/pullgate/pkg/imageref"
	"github.com/pullgate/pullgate/pkg/wire"
)

// EnvSocket overrides the agent socket (the protocol passes no flags).
const EnvSocket = "PULLGATE_SOCKET"

// ErrReadOnly is the answer to store, erase and list (wrapped with the
// action's name).
var ErrReadOnly = errors.New("pullgate credentials come from the node agent: only get is supported")

// readOnly names the refused action, as the client invoked it.
func readOnly(action string) error { return fmt.Errorf("%s: %w", action, ErrReadOnly) }

// Helper implements credentials.Helper.
type Helper struct {
	Socket  string
	Timeout time.Duration
}

// New returns a helper for the agent at socket ("" means the default).
func New(socket string) Helper {
	if socket == "" {
		socket = wire.DefaultSocket
	}
	return Helper{Socket: socket, Timeout: 12 * time.Second}
}

var _ credentials.Helper = Helper{}

// Add refuses.
func (Helper) Add(*credentials.Credentials) error { return readOnly("store") }

// Delete refuses.
func (Helper) Delete(string) error { return readOnly("erase") }

// List refuses.
func (Helper) List() (map[string]string, error) { return nil, readOnly("list") }

// Get asks the agent for the registry host of serverURL.
func (h Helper) Get(serverURL string) (string, string, error) {
	host, err := Host(serverURL)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	c, err := agentclient.Credentials(ctx, h.Socket, wire.CredentialsRequest{Image: host})
	if errors.Is(err, agentclient.ErrNotFound) {
		return "", "", credentials.NewErrCredentialsNotFound()
	}
	if err != nil {
		return "", "", err
	}
	return c.Username, c.Password, nil
}

// Host is the registry host of a server URL as docker tools pass it
// ("https://index.docker.io/v1/", "ghcr.io", "http://127.0.0.1:5000").
func Host(serverURL string) (string, error) {
	return imageref.Host(serverURL, imageref.ServerURL())
}
