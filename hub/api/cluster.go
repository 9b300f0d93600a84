package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/natsauth"
	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"
)

// Revoker pushes revocations to node agents after a change is stored. The
// proxy refuses revoked tokens on its own; this makes agents drop them at
// once too.
type Revoker interface {
	InstallChanged(ctx context.Context, in store.Install) error
	// InstallAdded tells the install's cluster about a new or re-enabled
	// install without dropping anything: agents resync and pick up the
	// upstream hosts it uses (containerd mirrors).
	InstallAdded(ctx context.Context, in store.Install) error
	CredentialsChanged(ctx context.Context, workspaceID string) error
	NodeRevoked(ctx context.Context, c store.Cluster, n store.Node) error
	ClusterDeleted(ctx context.Context, c store.Cluster) error
	// AkashLeasesChanged tells a cluster's agents that its lease
	// namespaces changed: they resync (a notice naming nothing).
	AkashLeasesChanged(ctx context.Context, c store.Cluster) error
}

// revoke runs a push; a failed push is logged, not returned: the change is
// stored and enforced by the proxy, and agents catch up when they resync.
func (s *server) revoke(what string, f func(Revoker) error) {
	if s.d.Revoker == nil {
		return
	}
	if err := f(s.d.Revoker); err != nil {
		s.log.Warn("push revocation to agents", "what", what, "err", err)
	}
}

// Cluster is a cluster as the API shows it.
type Cluster struct {
	Name       string `json:"name"`
	Workspace  string `json:"workspace,omitempty"` // single-workspace cluster; empty when shared
	Shared     bool   `json:"shared"`
	SAKeys     bool   `json:"sa_keys"` // approved service-account issuer keys
	SAIssuer   string `json:"sa_issuer,omitempty"`
	SAAudience string `json:"sa_audience"`
	// SAKeysPending: an agent proposed keys that differ from the approved
	// ones (cluster jwks show).
	SAKeysPending bool `json:"sa_keys_pending"`
	// JoinTokenUsesLeft is how many more enrolments the join token allows;
	// absent for a reusable token.
	JoinTokenUsesLeft  *int64     `json:"join_token_uses_left,omitempty"`
	JoinTokenExpiresAt *time.Time `json:"join_token_expires_at,omitempty"`
	// AkashProvider is the Akash provider address whose leases the
	// cluster runs; AkashController "namespace:serviceaccount" of its
	// binding controller. Empty: no Akash.
	AkashProvider   string    `json:"akash_provider,omitempty"`
	AkashController string    `json:"akash_controller,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
}

// ClusterList is the GET /clusters response.
type ClusterList struct {
	Clusters []Cluster `json:"clusters"`
}

// CreateClusterRequest is the POST /clusters body.
type CreateClusterRequest struct {
	Name       string          `json:"name"`
	Workspace  string          `json:"workspace,omitempty"` // empty: shared cluster
	SAJWKS     json.RawMessage `json:"sa_jwks,omitempty"`
	SAIssuer   string          `json:"sa_issuer,omitempty"`
	SAAudience string          `json:"sa_audience,omitempty"`
	// AkashProvider and AkashController (both or neither; shared
	// clusters only): see Cluster.
	AkashProvider   string `json:"akash_provider,omitempty"`
	AkashController string `json:"akash_controller,omitempty"`
	JoinTokenLimit
}

// UpdateClusterRequest is the PATCH /clusters/{cluster} body (hub admin).
// Absent fields are left as they are; both empty end the Akash binding.
type UpdateClusterRequest struct {
	AkashProvider   *string `json:"akash_provider,omitempty"`
	AkashController *string `json:"akash_controller,omitempty"`
}

// JoinTokenLimit restricts a new join token. Zero values: reusable, no
// expiry.
type JoinTokenLimit struct {
	// JoinTokenUses: enrolments the token allows (1: one-time; 0:
	// unlimited).
	JoinTokenUses int64 `json:"join_token_uses,omitempty"`
	// JoinTokenTTL: how long the token works, a Go duration ("24h").
	JoinTokenTTL string `json:"join_token_ttl,omitempty"`
}

// RotateJoinTokenRequest is the optional POST /clusters/{cluster}/join-token
// body.
type RotateJoinTokenRequest struct {
	JoinTokenLimit
}

// DeleteClusterResult is the DELETE /clusters/{cluster} response.
type DeleteClusterResult struct {
	// UnboundInstalls ("workspace/install") were bound to the cluster and
	// are now bound to none (force=true); their tokens stopped working.
	UnboundInstalls []string `json:"unbound_installs"`
}

func (l JoinTokenLimit) limit(now time.Time) (store.JoinLimit, error) {
	if l.JoinTokenUses < 0 {
		return store.JoinLimit{}, badRequest("join_token_uses %d: want 0 (reusable), 1 (one-time) or more", l.JoinTokenUses)
	}
	out := store.JoinLimit{Uses: l.JoinTokenUses}
	if l.JoinTokenTTL != "" {
		d, err := time.ParseDuration(l.JoinTokenTTL)
		if err != nil || d <= 0 {
			return store.JoinLimit{}, badRequest("join_token_ttl %q: want a positive duration such as 1h or 30m", l.JoinTokenTTL)
		}
		out.ExpiresAt = now.Add(d)
	}
	return out, nil
}

// JoinToken carries a cluster's join token: shown once, stored hashed.
type JoinToken struct {
	Cluster   Cluster `json:"cluster"`
	JoinToken string  `json:"join_token"`
}

// Node is an enrolled node.
type Node struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Revoked   bool       `json:"revoked"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// AgentVersion is the version the node's agent last reported (empty
	// for an agent that does not report one); LastSeenAt is when the hub
	// last heard from it (enrolment or resync), absent before that.
	AgentVersion string     `json:"agent_version"`
	LastSeenAt   *time.Time `json:"last_seen_at,omitempty"`
}

// NodeList is the GET /clusters/{cluster}/nodes response.
type NodeList struct {
	Nodes []Node `json:"nodes"`
}

func nodeView(n store.Node) Node {
	v := Node{ID: n.ID, Name: n.Name, Revoked: n.Revoked, CreatedAt: n.CreatedAt, AgentVersion: n.AgentVersion}
	if !n.RevokedAt.IsZero() {
		t := n.RevokedAt
		v.RevokedAt = &t
	}
	if !n.LastSeenAt.IsZero() {
		t := n.LastSeenAt.UTC()
		v.LastSeenAt = &t
	}
	return v
}

func (s *server) clusterView(ctx context.Context, c store.Cluster) Cluster {
	v := Cluster{Name: c.Name, Shared: c.WorkspaceID == "", SAKeys: len(c.SAJWKS) > 0, SAIssuer: c.SAIssuer,
		SAAudience: c.SAAudience, SAKeysPending: len(c.Proposal.JWKS) > 0, CreatedAt: c.CreatedAt,
		AkashProvider: c.AkashProvider, AkashController: c.AkashController}
	if c.JoinUsesLeft >= 0 {
		n := c.JoinUsesLeft
		v.JoinTokenUsesLeft = &n
	}
	if !c.JoinExpiresAt.IsZero() {
		t := c.JoinExpiresAt
		v.JoinTokenExpiresAt = &t
	}
	if c.WorkspaceID != "" {
		v.Workspace = s.workspaceName(ctx, c.WorkspaceID)
	}
	return v
}

func (s *server) workspaceName(ctx context.Context, id string) string {
	if ws, err := s.d.Store.WorkspaceByID(ctx, id); err == nil {
		return ws.Name
	}
	return id
}

func (s *server) createCluster(w http.ResponseWriter, r *http.Request) error {
	var req CreateClusterRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	setTarget(r, "cluster", req.Name)
	// A shared cluster serves many workspaces: the admin's; a workspace's
	// own cluster: its operators'.
	if req.Workspace == "" && !principalFrom(r.Context()).IsAdmin() {
		return errorf(http.StatusForbidden, "forbidden: a shared cluster (no workspace) is created by the hub admin only; name the workspace the cluster is for")
	}
	if req.Workspace != "" {
		setWorkspace(r, req.Workspace)
		if err := requireRole(r.Context(), req.Workspace, store.RoleOperator); err != nil {
			return err
		}
	}
	c := store.Cluster{Name: req.Name, SAIssuer: req.SAIssuer, SAAudience: req.SAAudience,
		AkashProvider: req.AkashProvider, AkashController: req.AkashController}
	if req.Workspace != "" {
		ws, err := s.d.Store.GetWorkspace(r.Context(), req.Workspace)
		if err != nil {
			return err
		}
		c.WorkspaceID = ws.ID
	}
	if len(req.SAJWKS) > 0 && string(req.SAJWKS) != "null" {
		if err := satoken.ValidateJWKS(req.SAJWKS); err != nil {
			return badRequest("sa_jwks: %v", err)
		}
		c.SAJWKS = req.SAJWKS
	}
	if req.SAIssuer != "" && !strings.HasPrefix(req.SAIssuer, "https://") {
		return badRequest("sa_issuer %q: want the https:// issuer URL of the cluster's service-account tokens", req.SAIssuer)
	}
	if len(req.SAAudience) > 253 || strings.ContainsAny(req.SAAudience, " \t\r\n") {
		return badRequest("sa_audience: at most 253 characters, no spaces")
	}
	limit, err := req.JoinTokenLimit.limit(s.now())
	if err != nil {
		return err
	}
	// The join token names the cluster id, which the store assigns: create
	// with a placeholder hash, then set the real one.
	c, err = s.d.Store.CreateCluster(r.Context(), c, natsauth.Hash("placeholder-never-matches"))
	if err != nil {
		return err
	}
	tok, hash := natsauth.NewJoinToken(c.ID)
	if err := s.d.Store.RotateJoinTokenLimited(r.Context(), c.Name, hash, limit); err != nil {
		return err
	}
	if c, err = s.d.Store.GetCluster(r.Context(), c.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, JoinToken{Cluster: s.clusterView(r.Context(), c), JoinToken: tok})
	return nil
}

func (s *server) listClusters(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.d.Store.ListClusters(r.Context())
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	out := ClusterList{Clusters: make([]Cluster, 0, len(cs))}
	for _, c := range cs {
		switch {
		case p.IsAdmin() || (c.WorkspaceID != "" && p.RoleByID(c.WorkspaceID) != ""):
			out.Clusters = append(out.Clusters, s.clusterView(r.Context(), c))
		case c.WorkspaceID == "":
			// Members bind installs to shared clusters by name: the name
			// is all they see of one.
			out.Clusters = append(out.Clusters, sharedClusterView(c))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getCluster(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	if c.WorkspaceID == "" && !principalFrom(r.Context()).IsAdmin() {
		writeJSON(w, http.StatusOK, sharedClusterView(c))
		return nil
	}
	writeJSON(w, http.StatusOK, s.clusterView(r.Context(), c))
	return nil
}

// sharedClusterView is what a member sees of a shared cluster: its name.
func sharedClusterView(c store.Cluster) Cluster {
	return Cluster{Name: c.Name, Shared: true}
}

func (s *server) deleteCluster(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	unbound, err := s.d.Store.DeleteCluster(r.Context(), c.Name, force)
	if err != nil {
		return err
	}
	// Agents drop everything; unbound installs had their generation bumped,
	// so the proxy refuses tokens minted for them too.
	s.revoke("cluster "+c.Name, func(rv Revoker) error { return rv.ClusterDeleted(r.Context(), c) })
	out := DeleteClusterResult{UnboundInstalls: []string{}}
	for _, in := range unbound {
		out.UnboundInstalls = append(out.UnboundInstalls, s.workspaceName(r.Context(), in.WorkspaceID)+"/"+in.Name)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// updateCluster changes a cluster's Akash settings (the hub admin's).
func (s *server) updateCluster(w http.ResponseWriter, r *http.Request) error {
	var req UpdateClusterRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.AkashProvider == nil && req.AkashController == nil {
		return badRequest("nothing to update: give akash_provider or akash_controller")
	}
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	provider, controller := c.AkashProvider, c.AkashController
	if req.AkashProvider != nil {
		provider = *req.AkashProvider
	}
	if req.AkashController != nil {
		controller = *req.AkashController
	}
	c, err = s.d.Store.SetClusterAkash(r.Context(), c.Name, provider, controller)
	if err != nil {
		return err
	}
	// Lease copies appear or vanish with the provider: agents resync.
	s.revoke("cluster "+c.Name, func(rv Revoker) error { return rv.AkashLeasesChanged(r.Context(), c) })
	writeJSON(w, http.StatusOK, s.clusterView(r.Context(), c))
	return nil
}

func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, badRequest("%s=%q: want true or false", name, v)
	}
}

func (s *server) rotateJoinToken(w http.ResponseWriter, r *http.Request) error {
	var req RotateJoinTokenRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	limit, err := req.limit(s.now())
	if err != nil {
		return err
	}
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	tok, hash := natsauth.NewJoinToken(c.ID)
	if err := s.d.Store.RotateJoinTokenLimited(r.Context(), c.Name, hash, limit); err != nil {
		return err
	}
	if c, err = s.d.Store.GetCluster(r.Context(), c.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, JoinToken{Cluster: s.clusterView(r.Context(), c), JoinToken: tok})
	return nil
}

func (s *server) listNodes(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.d.Store.ListNodes(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	out := NodeList{Nodes: make([]Node, 0, len(ns))}
	for _, n := range ns {
		out.Nodes = append(out.Nodes, nodeView(n))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) revokeNode(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	n, err := s.d.Store.RevokeNode(r.Context(), c.Name, r.PathValue("node"))
	if err != nil {
		return err
	}
	s.revoke("node "+n.ID, func(rv Revoker) error { return rv.NodeRevoked(r.Context(), c, n) })
	writeJSON(w, http.StatusOK, nodeView(n))
	return nil
}

// checkInstallCluster refuses an install a cluster could not serve safely:
// a single-workspace cluster takes installs of its workspace only, and a
// shared cluster picks installs by namespace, so it needs one.
func (s *server) checkInstallCluster(ctx context.Context, workspace, cluster, namespace string) error {
	if cluster == "" {
		return nil
	}
	// The workspace first: the same store reads whether or not the cluster
	// exists, or is another workspace's (no timing oracle).
	ws, err := s.d.Store.GetWorkspace(ctx, workspace)
	if err != nil {
		return err
	}
	c, err := s.d.Store.GetCluster(ctx, cluster)
	if errors.Is(err, store.ErrNotFound) {
		return badRequest("cluster %q does not exist: create it with `cluster create`", cluster)
	}
	if err != nil {
		return err
	}
	if c.WorkspaceID != "" {
		// A member must not learn that another workspace's cluster
		// exists, nor whose it is: the same answer as for no cluster.
		if ws.ID != c.WorkspaceID && !principalFrom(ctx).IsAdmin() {
			return badRequest("cluster %q does not exist: create it with `cluster create`", cluster)
		}
		if ws.ID != c.WorkspaceID {
			return badRequest("cluster %q belongs to workspace %q: installs of workspace %q cannot use it (create it as a shared cluster)", cluster, s.workspaceName(ctx, c.WorkspaceID), workspace)
		}
		return nil
	}
	if namespace == "" {
		return badRequest("cluster %q is shared: the install needs --namespace (pods are matched to installs by namespace)", cluster)
	}
	return nil
}
