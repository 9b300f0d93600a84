package jwks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pullgate/pullgate/pkg/wire"
)

// DiscoveryPath is the API server's OpenID discovery document, which names
// the issuer of the cluster's service-account tokens.
const DiscoveryPath = "/.well-known/openid-configuration"

// IssuerSource returns the issuer URL of the cluster's service-account
// tokens, offered to the hub with the keys (part of the same proposal).
type IssuerSource func(ctx context.Context) (string, error)

func (c *inCluster) issuer(ctx context.Context) (string, error) {
	data, err := c.get(ctx, DiscoveryPath, "application/json")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("jwks: %s: %w", DiscoveryPath, err)
	}
	if !wire.ValidIssuer(doc.Issuer) {
		return "", fmt.Errorf("jwks: %s: issuer %q is not an https:// URL", DiscoveryPath, doc.Issuer)
	}
	return doc.Issuer, nil
}
