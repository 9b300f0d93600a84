package sdl

import (
	"context"

	"github.com/pullgate/pullgate/hub/store"
)

// WorkspaceState is what an import reads and writes in the store: one
// workspace's registry credentials (with their sealed secrets, to tell an
// unchanged one) and installs. *store.SQL implements it.
type WorkspaceState interface {
	GetWorkspace(ctx context.Context, name string) (store.Workspace, error)

	ListCredentials(ctx context.Context, workspace string) ([]store.Credential, error)
	CredentialSecret(ctx context.Context, credentialID string, version int) (store.Sealed, error)
	CreateCredential(ctx context.Context, workspace string, c store.Credential, secret store.Sealed) (store.Credential, error)
	UpdateCredential(ctx context.Context, workspace, name string, u store.CredentialUpdate) (store.Credential, error)

	GetInstall(ctx context.Context, workspace, name string) (store.Install, error)
	ListInstalls(ctx context.Context, workspace string) ([]store.Install, error)
	CreateInstall(ctx context.Context, workspace string, in store.Install) (store.Install, error)
	UpdateInstall(ctx context.Context, workspace, name string, u store.InstallUpdate) (store.Install, error)
}

var _ WorkspaceState = (*store.SQL)(nil)
