package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/akash"
)

// PrincipalAkashController is the kind of a cluster's Akash binding
// controller, authenticated by its service-account token; its name is
// "namespace:serviceaccount".
const PrincipalAkashController = "akash-controller"

// ServiceAccountVerifier verifies a service-account token of a cluster as
// pulls are verified (approved keys, issuer, audience, bound to a pod).
// *tokensvc.Service implements it.
type ServiceAccountVerifier interface {
	VerifyServiceAccount(c store.Cluster, tok string) (satoken.Claims, error)
}

// maxAkashLeases bounds a full set of a cluster's lease namespaces.
const maxAkashLeases = 4096

// AkashLease is a lease namespace as the API shows it.
type AkashLease struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Owner     string `json:"owner"`
	DSeq      uint64 `json:"dseq"`
	GSeq      uint32 `json:"gseq"`
	OSeq      uint32 `json:"oseq"`
	Provider  string `json:"provider"`
	// Workspace owns the lease's account on this hub; empty when the
	// owner has none (the lease binds nothing). Admin views only.
	Workspace string    `json:"workspace,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	SeenAt    time.Time `json:"seen_at"`
}

// AkashLeaseList is the body of the GET .../akash/leases routes.
type AkashLeaseList struct {
	Leases []AkashLease `json:"leases"`
}

// PutAkashLeasesRequest is the PUT /clusters/{cluster}/akash/leases body:
// the cluster's full set of lease namespaces.
type PutAkashLeasesRequest struct {
	Leases []akash.LeaseID `json:"leases"`
}

// PutAkashLeasesResult answers it: how many leases the cluster has now,
// and the namespaces added and removed.
type PutAkashLeasesResult struct {
	Leases  int      `json:"leases"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

func akashLeaseView(l store.AkashLease, withWorkspace bool) AkashLease {
	v := AkashLease{Cluster: l.Cluster, Namespace: l.Namespace, Owner: l.Owner, DSeq: l.DSeq, GSeq: l.GSeq, OSeq: l.OSeq,
		Provider: l.Provider, CreatedAt: l.CreatedAt.UTC(), SeenAt: l.SeenAt.UTC()}
	if withWorkspace {
		v.Workspace = l.Workspace
	}
	return v
}

// authenticateController authenticates a controller route's request: a
// bearer JWT is taken as a service-account token, checked against the
// route's cluster by checkAkashController; anything else (the admin
// token, an API token, a session) as on every route.
func (s *server) authenticateController(r *http.Request) (*Principal, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && s.d.ServiceAccounts != nil && looksLikeJWT(tok) {
		return &Principal{Kind: PrincipalAkashController, Name: "unverified-service-account", saToken: tok}, nil
	}
	return s.authenticate(r)
}

// looksLikeJWT: three dot-separated parts, a JSON header. API and admin
// tokens never look like that.
func looksLikeJWT(tok string) bool {
	return strings.Count(tok, ".") == 2 && strings.HasPrefix(tok, "eyJ") && len(tok) <= 16<<10
}

// checkAkashController is the controller routes' rule: the hub admin, or
// a service-account token of the cluster (its approved keys, issuer and
// audience, bound to a pod) whose namespace:serviceaccount is the
// cluster's akash_controller, on a cluster with an Akash provider.
func (s *server) checkAkashController(ctx context.Context, name string, p *Principal, ri *reqInfo) error {
	if p.Kind == PrincipalAkashController {
		return s.checkControllerToken(ctx, name, p, ri)
	}
	c, err := s.d.Store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		ri.hideWorkspace = true
		return notFoundCluster(name)
	}
	if err != nil {
		return err
	}
	if p.IsAdmin() {
		return nil
	}
	if c.WorkspaceID != "" && p.RoleByID(c.WorkspaceID) == "" {
		ri.hideWorkspace = true
		return notFoundCluster(name)
	}
	return errorf(http.StatusForbidden, "forbidden: only the hub admin or cluster %q's Akash binding controller reports lease namespaces", name)
}

// errControllerToken is what an unverified service-account token gets,
// the same whether the cluster exists or not (the reason goes to the log).
var errControllerToken = errorf(http.StatusUnauthorized, "unauthorized: not a service-account token of the cluster's approved keys, issuer and audience, bound to a pod (the hub log says why)")

// checkControllerToken verifies a bearer JWT against the route's cluster.
// Until it is verified the caller is anonymous to everything after: no
// principal (so no activity row: anyone can send a JWT-shaped bearer) and
// one answer for a missing cluster and a token its keys refuse (so no
// cluster names are learnt).
func (s *server) checkControllerToken(ctx context.Context, name string, p *Principal, ri *reqInfo) error {
	tok := p.saToken
	p.saToken = ""
	refuse := func(why string) error {
		ri.principal = nil
		s.log.Info("akash controller token refused", "cluster", name, "why", why)
		return errControllerToken
	}
	c, err := s.d.Store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("no such cluster")
	}
	if err != nil {
		return err
	}
	claims, err := s.d.ServiceAccounts.VerifyServiceAccount(c, tok)
	if err != nil {
		return refuse(redactSecrets(strings.ReplaceAll(err.Error(), tok, "REDACTED")))
	}
	who := claims.Namespace + ":" + claims.ServiceAccount
	p.Name = who
	if c.AkashProvider == "" || c.AkashController == "" {
		return errorf(http.StatusForbidden, "forbidden: cluster %q runs no Akash provider (cluster update --akash-provider --akash-controller)", name)
	}
	if who != c.AkashController {
		return errorf(http.StatusForbidden, "forbidden: service account %s is not cluster %q's Akash controller", who, name)
	}
	return nil
}

// controllerCluster is the route's cluster (the rule checked it exists).
func (s *server) controllerCluster(r *http.Request) (store.Cluster, error) {
	return s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
}

func (s *server) putAkashLeases(w http.ResponseWriter, r *http.Request) error {
	var req PutAkashLeasesRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Leases) > maxAkashLeases {
		return badRequest("leases: %d, at most %d in one set", len(req.Leases), maxAkashLeases)
	}
	c, err := s.controllerCluster(r)
	if err != nil {
		return err
	}
	added, removed, err := s.d.Store.ReplaceAkashLeases(r.Context(), c.ID, req.Leases)
	if err != nil {
		return err
	}
	// The controller resyncs every few minutes: only a change tells the
	// agents to resync.
	if len(added)+len(removed) > 0 {
		s.revoke("leases of cluster "+c.Name, func(rv Revoker) error { return rv.AkashLeasesChanged(r.Context(), c) })
	}
	if added == nil {
		added = []string{}
	}
	if removed == nil {
		removed = []string{}
	}
	distinct := map[string]bool{}
	for _, l := range req.Leases {
		distinct[l.Namespace()] = true
	}
	writeJSON(w, http.StatusOK, PutAkashLeasesResult{Leases: len(distinct), Added: added, Removed: removed})
	return nil
}

func (s *server) putAkashLease(w http.ResponseWriter, r *http.Request) error {
	var l akash.LeaseID
	if err := decode(w, r, &l, false); err != nil {
		return err
	}
	c, err := s.controllerCluster(r)
	if err != nil {
		return err
	}
	ns := r.PathValue("namespace")
	created, err := s.d.Store.PutAkashLease(r.Context(), c.ID, ns, l)
	if err != nil {
		return err
	}
	if created {
		s.revoke("lease "+ns, func(rv Revoker) error { return rv.AkashLeasesChanged(r.Context(), c) })
	}
	ls, err := s.d.Store.AkashLeasesByCluster(r.Context(), c.ID)
	if err != nil {
		return err
	}
	for _, row := range ls {
		if row.Namespace == ns {
			// The controller learns no workspace names.
			writeJSON(w, http.StatusOK, akashLeaseView(row, false))
			return nil
		}
	}
	return errorf(http.StatusConflict, "lease namespace %q was removed meanwhile", ns)
}

func (s *server) deleteAkashLease(w http.ResponseWriter, r *http.Request) error {
	c, err := s.controllerCluster(r)
	if err != nil {
		return err
	}
	ns := r.PathValue("namespace")
	if err := s.d.Store.DeleteAkashLease(r.Context(), c.ID, ns); err != nil {
		return err
	}
	// Agents drop the lease's installs at once; the proxy already refuses
	// the tokens minted for it (lease_ended).
	s.revoke("lease "+ns, func(rv Revoker) error { return rv.AkashLeasesChanged(r.Context(), c) })
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listClusterAkashLeases(w http.ResponseWriter, r *http.Request) error {
	c, err := s.controllerCluster(r)
	if err != nil {
		return err
	}
	ls, err := s.d.Store.AkashLeasesByCluster(r.Context(), c.ID)
	if err != nil {
		return err
	}
	writeAkashLeases(w, ls, true)
	return nil
}

// listWorkspaceAkashLeases lists the lease namespaces of the workspace's
// own Akash account, on every cluster.
func (s *server) listWorkspaceAkashLeases(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.d.Store.AkashLeasesByWorkspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeAkashLeases(w, ls, false)
	return nil
}

// writeAkashLeases answers a lease listing ([] when empty, never null).
func writeAkashLeases(w http.ResponseWriter, ls []store.AkashLease, withWorkspace bool) {
	out := AkashLeaseList{Leases: make([]AkashLease, 0, len(ls))}
	for _, l := range ls {
		out.Leases = append(out.Leases, akashLeaseView(l, withWorkspace))
	}
	writeJSON(w, http.StatusOK, out)
}
