package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

// ClusterKeys shows a cluster's approved service-account keys and any
// pending proposal.
func (c *Client) ClusterKeys(ctx context.Context, cluster string) (api.ClusterKeys, error) {
	var out api.ClusterKeys
	if err := c.do(ctx, http.MethodGet, "/api/v1/clusters/"+url.PathEscape(cluster)+"/jwks", nil, nil, &out); err != nil {
		return out, fmt.Errorf("show service-account keys of cluster %q: %w", cluster, err)
	}
	return out, nil
}

// SetClusterKeys replaces a cluster's approved keys and issuer.
func (c *Client) SetClusterKeys(ctx context.Context, cluster string, req api.SetJWKSRequest) (api.ClusterKeys, error) {
	var out api.ClusterKeys
	if err := c.do(ctx, http.MethodPut, "/api/v1/clusters/"+url.PathEscape(cluster)+"/jwks", nil, req, &out); err != nil {
		return out, fmt.Errorf("set service-account keys of cluster %q: %w", cluster, err)
	}
	return out, nil
}

// ApproveClusterKeys approves a cluster's pending key proposal.
func (c *Client) ApproveClusterKeys(ctx context.Context, cluster string, req api.ApproveJWKSRequest) (api.ClusterKeys, error) {
	var out api.ClusterKeys
	if err := c.do(ctx, http.MethodPost, "/api/v1/clusters/"+url.PathEscape(cluster)+"/jwks/approve", nil, req, &out); err != nil {
		return out, fmt.Errorf("approve service-account keys of cluster %q: %w", cluster, err)
	}
	return out, nil
}

func printKeySet(s *session, title string, ks *api.KeySet) {
	issuer := ks.Issuer
	if issuer == "" {
		issuer = "(none)"
	}
	fmt.Fprintf(s.out, "%s, issuer %s:\n", title, issuer)
	t := newTable(s.out, "  KID", "KTY", "ALG", "THUMBPRINT (SHA-256)")
	for _, k := range ks.Keys {
		t.row("  "+dash(k.KID), k.Kty, dash(k.Alg), k.Thumbprint)
	}
	_ = t.flush()
}

func printClusterKeys(s *session, k api.ClusterKeys) error {
	if s.json {
		return s.printJSON(k)
	}
	if k.Approved == nil {
		fmt.Fprintln(s.out, "approved keys: none")
		if k.Shared {
			fmt.Fprintln(s.out, "  (a shared cluster serves no install token until keys are approved)")
		}
	} else {
		printKeySet(s, "approved keys", k.Approved)
	}
	if k.Proposal == nil {
		fmt.Fprintln(s.out, "proposal: none")
		return nil
	}
	p := k.Proposal
	by := p.ProposedBy
	if p.ProposedByName != "" {
		by += " (" + p.ProposedByName + ")"
	}
	printKeySet(s, fmt.Sprintf("proposal from node %s at %s", by, fmtTime(p.ProposedAt)), &p.KeySet)
	fmt.Fprintf(s.out, "compare the thumbprints with the cluster's own keys, then:\n  pullgate-hub cluster jwks approve %s", k.Cluster)
	for _, key := range p.Keys {
		fmt.Fprintf(s.out, " --thumbprint %s", key.Thumbprint)
	}
	if p.Issuer == "" {
		fmt.Fprint(s.out, " --issuer URL")
	}
	fmt.Fprintln(s.out)
	return nil
}

func newClusterJWKSCmd(g *globals) *cobra.Command {
	show := &cobra.Command{
		Use: "show CLUSTER", Short: "Show the approved service-account keys and any pending proposal", Args: exactArgs("CLUSTER"),
		Long: `Show the keys (key id, type, algorithm, RFC 7638 thumbprint) and issuer
that verify pods' service-account tokens on the cluster, and the key set an
agent proposed, if it differs: which node proposed it and when. A proposal
is never trusted by itself: compare its thumbprints with the cluster's own
keys before approving it.`,
		Example: "  pullgate-hub cluster jwks show akash-1",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			k, err := s.c.ClusterKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printClusterKeys(s, k)
		},
	}
	var approve api.ApproveJWKSRequest
	approveCmd := &cobra.Command{
		Use:   "approve CLUSTER --thumbprint T... [--kid K]... [--issuer URL]",
		Short: "Approve the pending proposal as the cluster's service-account keys",
		Long: `Make the key set an agent proposed the cluster's approved keys (replacing
the old ones) with its issuer. --thumbprint (required, once per key) and
--kid (optional) must name exactly the proposal's keys, so that what is
approved is what was checked: a node can replace the proposal at any time,
and a replaced proposal is refused. --issuer overrides the proposal's issuer, and is required when the
proposal has none.`,
		Example: `  pullgate-hub cluster jwks show akash-1
  pullgate-hub cluster jwks approve akash-1 --thumbprint 3q2-7w... --issuer https://kubernetes.default.svc.cluster.local`,
		Args: exactArgs("CLUSTER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			k, err := s.c.ApproveClusterKeys(cmd.Context(), args[0], approve)
			if err != nil {
				return err
			}
			if !s.json {
				fmt.Fprintf(s.err, "service-account keys of cluster %q approved\n", args[0])
			}
			return printClusterKeys(s, k)
		},
	}
	af := approveCmd.Flags()
	af.StringArrayVar(&approve.Thumbprints, "thumbprint", nil, "thumbprint of a proposed key (repeat for each key; all must match)")
	af.StringArrayVar(&approve.KIDs, "kid", nil, "key id of a proposed key (repeat for each key; all must match)")
	af.StringVar(&approve.Issuer, "issuer", "", "issuer of the cluster's service-account tokens (default: the proposal's)")

	var file string
	var set api.SetJWKSRequest
	setCmd := &cobra.Command{
		Use:   "set CLUSTER --file JWKS --issuer URL",
		Short: "Replace the cluster's approved service-account keys and issuer",
		Long: `Replace the keys and issuer that verify pods' service-account tokens. The
file is a complete key set (kubectl get --raw /openid/v1/jwks); to rotate,
set old and new keys together, then the new ones alone once the old key
signs no more tokens. Clears any pending proposal.`,
		Example: `  kubectl get --raw /openid/v1/jwks > jwks.json
  pullgate-hub cluster jwks set akash-1 --file jwks.json --issuer https://kubernetes.default.svc.cluster.local`,
		Args: exactArgs("CLUSTER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" || set.Issuer == "" {
				return usageErrorf("cluster jwks set needs --file and --issuer")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			set.JWKS = b
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			k, err := s.c.SetClusterKeys(cmd.Context(), args[0], set)
			if err != nil {
				return err
			}
			if !s.json {
				fmt.Fprintf(s.err, "service-account keys of cluster %q set\n", args[0])
			}
			return printClusterKeys(s, k)
		},
	}
	setCmd.Flags().StringVar(&file, "file", "", "JWKS file: the complete new key set")
	setCmd.Flags().StringVar(&set.Issuer, "issuer", "", "issuer (https://) of the cluster's service-account tokens")
	return group("jwks", "Show, approve or set a cluster's service-account keys",
		`The keys (and issuer) that verify pods' service-account tokens, by which a
shared cluster picks each pod's install. Agents propose the keys they find;
only an operator approves or sets them.`,
		"  pullgate-hub cluster jwks show akash-1\n  pullgate-hub cluster jwks approve akash-1 --thumbprint ...",
		show, approveCmd, setCmd)
}
