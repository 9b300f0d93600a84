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

// DeleteCluster deletes a cluster.
func (c *Client) DeleteCluster(ctx context.Context, name string) error {
	if err := c.do(ctx, http.MethodDelete, "/api/v1/clusters/"+url.PathEscape(name), nil, nil, nil); err != nil {
		return fmt.Errorf("delete cluster %q: %w", name, err)
	}
	return nil
}

// RotateJoinToken replaces a cluster's join token.
func (c *Client) RotateJoinToken(ctx context.Context, name string) (api.JoinToken, error) {
	var out api.JoinToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/clusters/"+url.PathEscape(name)+"/join-token", nil, nil, &out); err != nil {
		return out, fmt.Errorf("rotate join token of cluster %q: %w", name, err)
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
	create := &cobra.Command{
		Use:   "create NAME [--workspace W] [--sa-jwks FILE] [--sa-issuer URL]",
		Short: "Create a cluster and print its join token",
		Long: `Create a cluster: a set of nodes whose agents enrol with the join token
printed here (shown once, stored hashed; rotate it with rotate-join-token).

With --workspace the cluster serves installs of that workspace only, and an
install is chosen by the image. Without it the cluster is shared (an Akash
provider hosting many tenants): installs are chosen by the pod's namespace,
taken from a service-account token the hub verifies against the cluster's
issuer keys (--sa-jwks: the output of kubectl get --raw /openid/v1/jwks; if
omitted, the first agent's upload is pinned).`,
		Example: `  pullgate-hub cluster create edge --workspace acme
  kubectl get --raw /openid/v1/jwks > jwks.json
  pullgate-hub cluster create akash-1 --sa-jwks jwks.json --sa-issuer https://kubernetes.default.svc.cluster.local`,
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
			fmt.Fprintf(s.err, "cluster %q created (%s); the join token above is shown once: give it to the node agents (pullgate-agent run --join-token-file ...)\n", out.Cluster.Name, kind)
			return nil
		},
	}
	f := create.Flags()
	f.StringVarP(&req.Workspace, "workspace", "w", "", "single-workspace cluster of this workspace (default: shared)")
	f.StringVar(&jwksFile, "sa-jwks", "", "JWKS file of the cluster's service-account issuer")
	f.StringVar(&req.SAIssuer, "sa-issuer", "", "expected issuer (iss) of service-account tokens")
	f.StringVar(&req.SAAudience, "sa-audience", "", "expected audience of service-account tokens (default pullgate)")

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
			t := newTable(s.out, "NAME", "WORKSPACE", "SA KEYS", "CREATED")
			for _, c := range cs {
				ws := c.Workspace
				if c.Shared {
					ws = "(shared)"
				}
				t.row(c.Name, ws, fmt.Sprint(c.SAKeys), fmtTime(c.CreatedAt))
			}
			return t.flush()
		},
	}
	del := &cobra.Command{
		Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a cluster and its node identities", Args: exactArgs("NAME"),
		Long:    "Delete a cluster. Its agents drop every cached token at once and can no longer connect.",
		Example: "  pullgate-hub cluster delete edge",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			if err := s.c.DeleteCluster(cmd.Context(), args[0]); err != nil {
				return err
			}
			return s.say(nil, "cluster %q deleted", args[0])
		},
	}
	rotate := &cobra.Command{
		Use: "rotate-join-token NAME", Short: "Replace a cluster's join token", Args: exactArgs("NAME"),
		Long:    "Print a new join token; the old one stops working for new enrolments. Enrolled nodes keep their own identities.",
		Example: "  pullgate-hub cluster rotate-join-token edge",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			out, err := s.c.RotateJoinToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(out)
			}
			fmt.Fprintln(s.out, out.JoinToken)
			return nil
		},
	}
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
			t := newTable(s.out, "ID", "NAME", "REVOKED", "ENROLLED")
			for _, n := range ns {
				t.row(n.ID, n.Name, fmt.Sprint(n.Revoked), fmtTime(n.CreatedAt))
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
		create, list, del, rotate, node)
}
