package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pullgate/pullgate/hub/sdl"
)

// AkashCredentialsRequest is the POST .../akash/leases/{namespace}/credentials
// body: the services of a lease's manifest that carry registry
// credentials, as the binding controller read them from the Manifest
// resource.
type AkashCredentialsRequest struct {
	Services []AkashServiceCredentials `json:"services"`
}

// AkashServiceCredentials is one manifest service: its images and its
// credentials block.
type AkashServiceCredentials struct {
	Name        string           `json:"name"`
	Images      []string         `json:"images"`
	Credentials AkashCredentials `json:"credentials"`
}

// AkashCredentials is a manifest service's credentials block. Password
// never prints.
type AkashCredentials struct {
	Host     string   `json:"host"`
	Email    string   `json:"email,omitempty"`
	Username string   `json:"username"`
	Password Password `json:"password"`
}

// LogValue shows the block to slog without its password.
func (c AkashCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.String("username", c.Username), slog.Any("password", c.Password))
}

// AkashCredentialsResult answers it: where the credentials went and each
// image's name through the hub (for the controller's webhook).
type AkashCredentialsResult struct {
	Workspace string            `json:"workspace"`
	Hub       string            `json:"hub"`
	Images    map[string]string `json:"images"`
}

// importAkashCredentials turns a lease manifest's credentials into hub
// state in the lease owner's workspace (made, without a user, when the
// owner has none yet): one registry credential per host and username, as
// an SDL import makes them, and an Akash install sdl-<dseq> for the
// lease's deployment whose allow-list is exactly the images' repositories.
// Opt-in (--akash-import-credentials): it is what lets tenants keep their
// SDL credentials, which the provider then still holds in plaintext.
func (s *server) importAkashCredentials(w http.ResponseWriter, r *http.Request) error {
	if !s.d.AkashImportCredentials {
		return errorf(http.StatusForbidden, "forbidden: credential import is off on this hub (pullgate-hub serve --akash-import-credentials)")
	}
	var req AkashCredentialsRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	c, err := s.controllerCluster(r)
	if err != nil {
		return err
	}
	ns := r.PathValue("namespace")
	setTarget(r, "lease", ns)
	leases, err := s.d.Store.AkashLeasesByCluster(ctx, c.ID)
	if err != nil {
		return err
	}
	i := -1
	for j, l := range leases {
		if l.Namespace == ns {
			i = j
		}
	}
	if i < 0 {
		return errorf(http.StatusNotFound, "lease namespace %q of cluster %q not found: report the lease first", ns, c.Name)
	}
	lease := leases[i]
	// The provider manifest's form, so that the SDL importer checks it as
	// any manifest: hosts, usernames, passwords, images.
	type manService struct {
		Name        string           `json:"name"`
		Image       string           `json:"image"`
		Credentials AkashCredentials `json:"credentials"`
	}
	var svcs []manService
	for _, sv := range req.Services {
		if len(sv.Images) == 0 {
			return badRequest("service %q: no images", sv.Name)
		}
		for k, img := range sv.Images {
			name := sv.Name
			if k > 0 {
				name += "-" + strconv.Itoa(k)
			}
			svcs = append(svcs, manService{Name: name, Image: img, Credentials: sv.Credentials})
		}
	}
	if len(svcs) == 0 {
		return badRequest("services: none with images and credentials")
	}
	man, err := json.Marshal([]any{map[string]any{"name": "lease", "services": svcs}})
	if err != nil {
		return err
	}
	doc, err := sdl.ParseManifest(man)
	if err != nil {
		return sdlErr(err)
	}
	hub := s.hubHost(r)
	acct, _, err := s.d.Store.EnsureAkashAccount(ctx, lease.Owner, "")
	if err != nil {
		return err
	}
	setWorkspace(r, acct.Workspace)
	dseq := strconv.FormatUint(lease.DSeq, 10)
	im := &sdl.Importer{Store: s.d.Store, Sealer: s.d.Sealer, Now: s.now}
	rep, err := im.Import(ctx, sdl.Params{Workspace: acct.Workspace, Akash: dseq, Install: "sdl-" + dseq, HubHost: hub}, doc)
	if err != nil {
		return sdlErr(err)
	}
	if in, ok := rep.ChangedInstall(); ok {
		s.revoke("install "+in.Name, func(rv Revoker) error {
			if rep.Install.Action == sdl.Created {
				return rv.InstallAdded(ctx, in)
			}
			return rv.InstallChanged(ctx, in)
		})
	}
	if rep.CredentialsChanged() {
		s.revoke("credentials of "+acct.Workspace, func(rv Revoker) error { return rv.CredentialsChanged(ctx, acct.WorkspaceID) })
	}
	out := AkashCredentialsResult{Workspace: acct.Workspace, Hub: hub, Images: map[string]string{}}
	for _, sr := range rep.Services {
		if sr.HubImage != "" {
			out.Images[sr.Image] = sr.HubImage
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
