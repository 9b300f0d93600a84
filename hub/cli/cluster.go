package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

// CreateCluster creates a cluster and returns its join token.
func (c *Client) CreateCluster(ctx context.Context, req api.CreateClusterRequest) (api.JoinToken, error) {
	var out api.JoinToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/clusters", nil, req, &out); err != nil {
		return out, fmt.Errorf("create cluster %q: %w", req.Name, err)
	}
	return out, nil
}

// ListClusters lists clusters.
func (c *Client) ListClusters(ctx context.Context) ([]api.Cluster, error) {
	var out api.ClusterList
	if err := c.do(ctx, http.MethodGet, "/api/v1/clusters", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out.Clusters, nil
}

// DeleteCluster deletes a cluster; with force, installs bound to it are
// unbound instead of refusing.
func (c *Client) DeleteCluster(ctx context.Context, name string, force bool) (api.DeleteClusterResult, error) {
	var out api.DeleteClusterResult
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	if err := c.do(ctx, http.MethodDelete, "/api/v1/clusters/"+url.PathEscape(name), q, nil, &out); err != nil {
		return out, fmt.Errorf("delete cluster %q: %w", name, err)
	}
	return out, nil
}

// RotateJoinToken replaces a cluster's join token.
func (c *Client) RotateJoinToken(ctx context.Context, name string, limit api.JoinTokenLimit) (api.JoinToken, error) {
	var out api.JoinToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/clusters/"+url.PathEscape(name)+"/join-token", nil, api.RotateJoinTokenRequest{JoinTokenLimit: limit}, &out); err != nil {
		return out, fmt.Errorf("rotate join token of cluster %q: %w", name, err)
	}
	return out, nil
}

// UpdateCluster changes a cluster's Akash settings.
func (c *Client) UpdateCluster(ctx context.Context, name string, req api.UpdateClusterRequest) (api.Cluster, error) {
	var out api.Cluster
	if err := c.do(ctx, http.MethodPatch, "/api/v1/clusters/"+url.PathEscape(name), nil, req, &out); err != nil {
		return out, fmt.Errorf("update cluster %q: %w", name, err)
	}
	return out, nil
}

// ListNodes lists a cluster's nodes.
func (c *Client) ListNodes(ctx context.Context, cluster string) ([]api.Node, error) {
	var out api.NodeList
	if err := c.do(ctx, http.MethodGet, "/api/v1/clusters/"+url.PathEscape(cluster)+"/nodes", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list nodes of cluster %q: %w", cluster, err)
	}
	return out.Nodes, nil
}

// RevokeNode revokes one node.
func (c *Client) RevokeNode(ctx context.Context, cluster, node string) (api.Node, error) {
	var out api.Node
	if err := c.do(ctx, http.MethodPost, "/api/v1/clusters/"+url.PathEscape(cluster)+"/nodes/"+url.PathEscape(node)+"/revoke", nil, nil, &out); err != nil {
		return out, fmt.Errorf("revoke node %q of cluster %q: %w", node, cluster, err)
	}
	return out, nil
}

func newClusterCmd(g *globals) *cobra.Command {
	var req api.CreateClusterRequest
	var jwksFile string
	var joinTTL time.Duration
	create := &cobra.Command{
		Use:   "create NAME [--workspace W] [--sa-jwks FILE --sa-issuer URL] [--join-token-uses N] [--join-token-ttl D] [--akash-provider ADDR --akash-controller NS:SA]",
		Short: "Create a cluster and print its join token",
		Long: `Create a cluster: a set of nodes whose agents enrol with the join token
printed here (shown once, stored hashed; rotate it with rotate-join-token).
The token is reusable unless --join-token-uses (1: one-time) or
--join-token-ttl limit it.

With --workspace the cluster serves installs of that workspace only, and an
install is chosen by the image. Without it the cluster is shared (an Akash
provider hosting many tenants): installs are chosen by the pod's namespace,
taken from a service-account token the hub verifies against the cluster's
approved issuer keys and issuer. Give them here (--sa-jwks: the output of
kubectl get --raw /openid/v1/jwks; --sa-issuer: the issuer field of
kubectl get --raw /.well-known/openid-configuration), or later with
"cluster jwks set", or approve what the agents propose with
"cluster jwks show" and "cluster jwks approve". A shared cluster serves no
install token until it has approved keys; agents never set them.

--akash-provider (the provider's akash1... address) and --akash-controller
(namespace:serviceaccount of its binding controller, pullgate-agent akash)
make a shared cluster an Akash provider's: the controller reports the lease
namespaces, and each is served by the Akash installs of the workspace whose
account owns the lease (see docs/akash.md).`,
		Example: `  pullgate-hub cluster create edge --workspace acme
  kubectl get --raw /openid/v1/jwks > jwks.json
  pullgate-hub cluster create akash-1 --sa-jwks jwks.json --sa-issuer https://kubernetes.default.svc.cluster.local
  pullgate-hub cluster create edge-2 --workspace acme --join-token-uses 1 --join-token-ttl 1h
  pullgate-hub cluster create provider-1 --sa-jwks jwks.json --akash-provider akash1... --akash-controller pullgate:pullgate-akash`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--sa-jwks: %w", err)
				}
				req.SAJWKS = b
			}
			limit, err := joinLimit(req.JoinTokenUses, joinTTL, "--join-token-uses", "--join-token-ttl")
			if err != nil {
				return err
			}
			req.JoinTokenLimit = limit
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			out, err := s.c.CreateCluster(cmd.Context(), req)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(out)
			}
			fmt.Fprintln(s.out, out.JoinToken)
			kind := "shared"
			if out.Cluster.Workspace != "" {
				kind = "workspace " + out.Cluster.Workspace
			}
			fmt.Fprintf(s.err, "cluster %q created (%s); the join token above is shown once (%s): give it to the node agents (pullgate-agent run --join-token-file ...)\n",
				out.Cluster.Name, kind, joinUses(out.Cluster))
			if out.Cluster.Shared && !out.Cluster.SAKeys {
				fmt.Fprintf(s.err, "it serves no install token until its service-account keys are approved: pullgate-hub cluster jwks show %s\n", out.Cluster.Name)
			}
			return nil
		},
	}
	f := create.Flags()
	f.StringVarP(&req.Workspace, "workspace", "w", "", "single-workspace cluster of this workspace (default: shared)")
	f.StringVar(&jwksFile, "sa-jwks", "", "JWKS file of the cluster's service-account issuer (approved keys)")
	f.StringVar(&req.SAIssuer, "sa-issuer", "", "issuer (iss) of the cluster's service-account tokens, pinned with the keys (without it the issuer is not checked)")
	f.StringVar(&req.SAAudience, "sa-audience", "", "expected audience of service-account tokens (default pullgate)")
	f.Int64Var(&req.JoinTokenUses, "join-token-uses", 0, "enrolments the join token allows (1: one-time; 0: reusable)")
	f.DurationVar(&joinTTL, "join-token-ttl", 0, "how long the join token works (e.g. 24h; 0: no expiry)")
	f.StringVar(&req.AkashProvider, "akash-provider", "", "Akash provider address (akash1...) whose lease namespaces the shared cluster runs (with --akash-controller)")
	f.StringVar(&req.AkashController, "akash-controller", "", "namespace:serviceaccount of the cluster's Akash binding controller")

	var upd api.UpdateClusterRequest
	var updProvider, updController string
	update := &cobra.Command{
		Use: "update NAME [--akash-provider ADDR] [--akash-controller NS:SA]", Short: "Change a cluster's Akash provider and binding controller (hub admin)",
		Long: `Change a shared cluster's Akash settings: --akash-provider is the provider
address whose lease namespaces the cluster runs, --akash-controller the
namespace:serviceaccount of its binding controller (the only service account
whose tokens may report lease namespaces). Both are set together; both ''
end the binding (lease rows stay but bind nothing).`,
		Example: `  pullgate-hub cluster update provider-1 --akash-provider akash1... --akash-controller pullgate:pullgate-akash
  pullgate-hub cluster update provider-1 --akash-provider '' --akash-controller ''`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			upd.AkashProvider = ifChanged(f, "akash-provider", updProvider)
			upd.AkashController = ifChanged(f, "akash-controller", updController)
			if upd.AkashProvider == nil && upd.AkashController == nil {
				return usageErrorf("%s needs --akash-provider or --akash-controller", cmd.CommandPath())
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			c, err := s.c.UpdateCluster(cmd.Context(), args[0], upd)
			if err != nil {
				return err
			}
			return s.say(c, "cluster %q updated (akash provider: %s, controller: %s)", c.Name, dash(c.AkashProvider), dash(c.AkashController))
		},
	}
	update.Flags().StringVar(&updProvider, "akash-provider", "", "Akash provider address (akash1...), '' to clear")
	update.Flags().StringVar(&updController, "akash-controller", "", "namespace:serviceaccount of the binding controller, '' to clear")

	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List clusters", Args: noArgs,
		Example: "  pullgate-hub cluster list",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			cs, err := s.c.ListClusters(cmd.Context())
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(cs)
			}
			t := newTable(s.out, "NAME", "WORKSPACE", "SA KEYS", "JOIN TOKEN", "CREATED")
			for _, c := range cs {
				ws := c.Workspace
				if c.Shared {
					ws = "(shared)"
				}
				keys := "none"
				if c.SAKeys {
					keys = "approved"
				}
				if c.SAKeysPending {
					keys += ", proposal pending"
				}
				t.row(c.Name, ws, keys, joinUses(c), fmtTime(c.CreatedAt))
			}
			return t.flush()
		},
	}
	var force bool
	del := &cobra.Command{
		Use: "delete NAME [--force]", Aliases: []string{"rm"}, Short: "Delete a cluster and its node identities", Args: exactArgs("NAME"),
		Long: `Delete a cluster. Its agents drop every cached token at once and can no
longer connect.

While installs are bound to the cluster the delete is refused and they are
listed. With --force they are unbound instead: they stay in their
workspaces, bound to no cluster, and every token minted for them stops
working. A cluster created later with the same name never inherits them.`,
		Example: "  pullgate-hub cluster delete edge\n  pullgate-hub cluster delete edge --force",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			out, err := s.c.DeleteCluster(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			if len(out.UnboundInstalls) > 0 && !s.json {
				fmt.Fprintf(s.err, "unbound installs (now bound to no cluster; their tokens stopped working): %s\n", strings.Join(out.UnboundInstalls, ", "))
			}
			return s.say(out, "cluster %q deleted", args[0])
		},
	}
	del.Flags().BoolVar(&force, "force", false, "unbind the installs bound to the cluster instead of refusing")
	var rotUses int64
	var rotTTL time.Duration
	rotate := &cobra.Command{
		Use: "rotate-join-token NAME [--uses N] [--ttl D]", Short: "Replace a cluster's join token", Args: exactArgs("NAME"),
		Long: `Print a new join token; the old one stops working for new enrolments.
Enrolled nodes keep their own identities. The new token is reusable unless
--uses (1: one-time) or --ttl limit it.`,
		Example: "  pullgate-hub cluster rotate-join-token edge\n  pullgate-hub cluster rotate-join-token edge --uses 1 --ttl 1h",
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := joinLimit(rotUses, rotTTL, "--uses", "--ttl")
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			out, err := s.c.RotateJoinToken(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(out)
			}
			fmt.Fprintln(s.out, out.JoinToken)
			fmt.Fprintf(s.err, "join token of cluster %q replaced (%s)\n", out.Cluster.Name, joinUses(out.Cluster))
			return nil
		},
	}
	rotate.Flags().Int64Var(&rotUses, "uses", 0, "enrolments the new token allows (1: one-time; 0: reusable)")
	rotate.Flags().DurationVar(&rotTTL, "ttl", 0, "how long the new token works (e.g. 24h; 0: no expiry)")
	nodeList := &cobra.Command{
		Use: "list CLUSTER", Aliases: []string{"ls"}, Short: "List a cluster's enrolled nodes", Args: exactArgs("CLUSTER"),
		Example: "  pullgate-hub cluster node list edge",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			ns, err := s.c.ListNodes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(ns)
			}
			t := newTable(s.out, "ID", "NAME", "VERSION", "LAST CONTACT", "REVOKED", "ENROLLED")
			for _, n := range ns {
				v, seen := n.AgentVersion, "never"
				if v == "" {
					v = "unknown"
				}
				if n.LastSeenAt != nil {
					seen = fmtTime(*n.LastSeenAt)
				}
				t.row(n.ID, n.Name, v, seen, fmt.Sprint(n.Revoked), fmtTime(n.CreatedAt))
			}
			return t.flush()
		},
	}
	nodeRevoke := &cobra.Command{
		Use: "revoke CLUSTER NODE", Short: "Revoke one node's identity", Args: exactArgs("CLUSTER", "NODE"),
		Long: `Revoke a node (by id, or by a name only one node has). It is disconnected,
can no longer connect or get tokens, and tokens it holds stop working at the
proxy. To bring the machine back, delete the agent's state dir and let it
enrol again with the cluster's join token.`,
		Example: "  pullgate-hub cluster node revoke edge node_3f2a...",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			n, err := s.c.RevokeNode(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return s.say(n, "node %s (%s) of cluster %q revoked", n.ID, n.Name, args[0])
		},
	}
	node := group("node", "Manage a cluster's enrolled nodes", "", "  pullgate-hub cluster node list edge", nodeList, nodeRevoke)
	return group("cluster", "Manage clusters and their nodes",
		"A cluster is a set of nodes whose agents fetch install tokens from the hub over NATS.",
		"  pullgate-hub cluster create edge --workspace acme\n  pullgate-hub cluster list\n  pullgate-hub cluster node list edge",
		create, update, list, del, rotate, newClusterJWKSCmd(g), node)
}

// joinLimit checks join token limit flags.
func joinLimit(uses int64, ttl time.Duration, usesFlag, ttlFlag string) (api.JoinTokenLimit, error) {
	if uses < 0 {
		return api.JoinTokenLimit{}, usageErrorf("%s %d: want 0 (reusable), 1 (one-time) or more", usesFlag, uses)
	}
	if ttl < 0 {
		return api.JoinTokenLimit{}, usageErrorf("%s %v: want a positive duration (or 0: no expiry)", ttlFlag, ttl)
	}
	l := api.JoinTokenLimit{JoinTokenUses: uses}
	if ttl > 0 {
		l.JoinTokenTTL = ttl.String()
	}
	return l, nil
}

// joinUses describes what a cluster's join token still allows.
func joinUses(c api.Cluster) string {
	out := "reusable"
	if c.JoinTokenUsesLeft != nil {
		out = fmt.Sprintf("%d use(s) left", *c.JoinTokenUsesLeft)
	}
	if c.JoinTokenExpiresAt != nil {
		out += ", expires " + fmtTime(*c.JoinTokenExpiresAt)
	}
	return out
}
