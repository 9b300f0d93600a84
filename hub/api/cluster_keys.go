package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"

	"github.com/pullgate/pullgate/pkg/wire"
)

// A cluster's service-account keys. Approved keys (set by the operator, or
// a node's proposal the operator approved) verify pods' tokens; what an
// agent offers is only a proposal. A shared cluster serves no install token
// until it has approved keys.

// KeySet is a JWKS with its issuer and the identity of each key.
type KeySet struct {
	Issuer string            `json:"issuer,omitempty"`
	Keys   []satoken.KeyInfo `json:"keys"`
	JWKS   json.RawMessage   `json:"jwks"`
}

// ProposedKeySet is a key set an agent offered.
type ProposedKeySet struct {
	KeySet
	ProposedBy     string    `json:"proposed_by"` // node id
	ProposedByName string    `json:"proposed_by_name,omitempty"`
	ProposedAt     time.Time `json:"proposed_at"`
}

// ClusterKeys is the GET /clusters/{cluster}/jwks response.
type ClusterKeys struct {
	Cluster  string          `json:"cluster"`
	Shared   bool            `json:"shared"`
	Approved *KeySet         `json:"approved,omitempty"`
	Proposal *ProposedKeySet `json:"proposal,omitempty"`
}

// SetJWKSRequest is the PUT /clusters/{cluster}/jwks body: the new
// approved key set (it replaces the old one: list every key that must keep
// working, old and new, during a rotation) and its issuer.
type SetJWKSRequest struct {
	JWKS   json.RawMessage `json:"jwks"`
	Issuer string          `json:"issuer"`
}

// ApproveJWKSRequest is the POST /clusters/{cluster}/jwks/approve body.
// Thumbprints (required) and KIDs (optional) must be exactly those of the
// pending proposal: the operator confirms what they checked, and a node
// that swaps the proposal between show and approve gets nothing approved. Issuer overrides the
// proposal's (required when the proposal has none).
type ApproveJWKSRequest struct {
	KIDs        []string `json:"kids,omitempty"`
	Thumbprints []string `json:"thumbprints,omitempty"`
	Issuer      string   `json:"issuer,omitempty"`
}

func keySet(jwks []byte, issuer string) (*KeySet, error) {
	keys, err := satoken.DescribeJWKS(jwks)
	if err != nil {
		return nil, err
	}
	return &KeySet{Issuer: issuer, Keys: keys, JWKS: json.RawMessage(jwks)}, nil
}

func (s *server) clusterKeys(r *http.Request, c store.Cluster) ClusterKeys {
	out := ClusterKeys{Cluster: c.Name, Shared: c.WorkspaceID == ""}
	if len(c.SAJWKS) > 0 {
		ks, err := keySet(c.SAJWKS, c.SAIssuer)
		if err != nil {
			ks = &KeySet{Issuer: c.SAIssuer, Keys: []satoken.KeyInfo{}, JWKS: json.RawMessage(c.SAJWKS)}
		}
		out.Approved = ks
	}
	if len(c.Proposal.JWKS) > 0 {
		ks, err := keySet(c.Proposal.JWKS, c.Proposal.Issuer)
		if err != nil {
			ks = &KeySet{Issuer: c.Proposal.Issuer, Keys: []satoken.KeyInfo{}, JWKS: json.RawMessage(c.Proposal.JWKS)}
		}
		p := &ProposedKeySet{KeySet: *ks, ProposedBy: c.Proposal.NodeID, ProposedAt: c.Proposal.At}
		if n, _, err := s.d.Store.NodeByID(r.Context(), c.Proposal.NodeID); err == nil {
			p.ProposedByName = n.Name
		}
		out.Proposal = p
	}
	return out
}

func (s *server) getClusterKeys(w http.ResponseWriter, r *http.Request) error {
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.clusterKeys(r, c))
	return nil
}

func checkIssuer(field, issuer string) error {
	if !wire.ValidIssuer(issuer) {
		return badRequest("%s %q: want the https:// issuer URL of the cluster's service-account tokens (kubectl get --raw /.well-known/openid-configuration)", field, issuer)
	}
	return nil
}

func (s *server) setClusterKeys(w http.ResponseWriter, r *http.Request) error {
	var req SetJWKSRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if len(req.JWKS) == 0 || string(req.JWKS) == "null" {
		return badRequest("jwks: required (the output of kubectl get --raw /openid/v1/jwks)")
	}
	if err := satoken.ValidateJWKS(req.JWKS); err != nil {
		return badRequest("jwks: %v", err)
	}
	if err := checkIssuer("issuer", req.Issuer); err != nil {
		return err
	}
	c, err := s.d.Store.SetClusterJWKS(r.Context(), r.PathValue("cluster"), req.JWKS, req.Issuer)
	if err != nil {
		return err
	}
	s.log.Info("service-account keys set", "cluster", c.Name, "issuer", c.SAIssuer)
	writeJSON(w, http.StatusOK, s.clusterKeys(r, c))
	return nil
}

func (s *server) approveClusterKeys(w http.ResponseWriter, r *http.Request) error {
	var req ApproveJWKSRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	c, err := s.d.Store.GetCluster(r.Context(), r.PathValue("cluster"))
	if err != nil {
		return err
	}
	if len(c.Proposal.JWKS) == 0 {
		return badRequest("cluster %q has no proposed service-account keys to approve (agents propose them on sync; or set them with `cluster jwks set`)", c.Name)
	}
	keys, err := satoken.DescribeJWKS(c.Proposal.JWKS)
	if err != nil {
		return badRequest("the proposed keys of cluster %q are unusable: %v", c.Name, err)
	}
	var kids, tps []string
	for _, k := range keys {
		kids, tps = append(kids, k.KID), append(tps, k.Thumbprint)
	}
	if len(req.Thumbprints) == 0 {
		return badRequest("thumbprints: required: name every thumbprint `cluster jwks show %s` printed, so that what is approved is what was checked (a node can replace the proposal at any time)", c.Name)
	}
	if len(req.KIDs) > 0 && !sameSet(req.KIDs, kids) {
		return conflict("the proposed keys of cluster %q have key ids %s, not %s: check them with `cluster jwks show`", c.Name, strings.Join(kids, ", "), strings.Join(req.KIDs, ", "))
	}
	if !sameSet(req.Thumbprints, tps) {
		return conflict("the proposed keys of cluster %q have thumbprints %s, not %s: check them with `cluster jwks show`", c.Name, strings.Join(tps, ", "), strings.Join(req.Thumbprints, ", "))
	}
	issuer := req.Issuer
	if issuer == "" {
		issuer = c.Proposal.Issuer
	}
	if issuer == "" {
		return badRequest("the proposal for cluster %q names no issuer: give it (issuer; kubectl get --raw /.well-known/openid-configuration)", c.Name)
	}
	if err := checkIssuer("issuer", issuer); err != nil {
		return err
	}
	c, err = s.d.Store.ApproveClusterJWKS(r.Context(), c.Name, c.Proposal, issuer)
	if err != nil {
		return err
	}
	s.log.Info("service-account keys approved", "cluster", c.Name, "issuer", c.SAIssuer)
	writeJSON(w, http.StatusOK, s.clusterKeys(r, c))
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func conflict(format string, args ...any) error {
	return errorf(http.StatusConflict, format, args...)
}
