package tokensvc

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/pullgate/pullgate/hub/satoken"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// proposeKeys records the service-account keys (and issuer) a node offered
// as a proposal for the operator, unless they are the approved keys or the
// pending proposal already. A node never decides what the hub trusts: the
// first node to sync used to pin its keys, so a node enrolled with a
// shared cluster's join token could forge any pod's token.
func (s *Service) proposeKeys(ctx context.Context, n store.Node, c store.Cluster, offered json.RawMessage, issuer string) *wire.ErrorReply {
	if err := satoken.ValidateJWKS(offered); err != nil {
		return &wire.ErrorReply{Code: wire.CodeInvalid, Error: "jwks: " + err.Error()}
	}
	if issuer != "" && !wire.ValidIssuer(issuer) {
		issuer = "" // not a usable issuer: propose the keys alone
	}
	var doc bytes.Buffer
	if err := json.Compact(&doc, offered); err != nil {
		return &wire.ErrorReply{Code: wire.CodeInvalid, Error: "jwks: " + err.Error()}
	}
	if sameJSON(doc.Bytes(), c.SAJWKS) && (issuer == "" || issuer == c.SAIssuer) {
		return nil
	}
	if sameJSON(doc.Bytes(), c.Proposal.JWKS) && issuer == c.Proposal.Issuer {
		return nil
	}
	if err := s.store.ProposeClusterJWKS(ctx, c.ID, store.JWKSProposal{JWKS: doc.Bytes(), Issuer: issuer, NodeID: n.ID, At: s.now()}); err != nil {
		s.log.Error("record proposed service-account keys", "cluster", c.Name, "err", err)
		return internal(err)
	}
	s.log.Warn("a node proposed service-account keys that differ from the approved ones; review them with `pullgate-hub cluster jwks show`",
		"cluster", c.Name, "node", n.ID, "node_name", n.Name)
	return nil
}

// sameJSON compares two JSON documents ignoring insignificant whitespace.
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
