package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

// ClusterAkashLeases lists a cluster's Akash lease namespaces (hub admin).
func (c *Client) ClusterAkashLeases(ctx context.Context, cluster string) ([]api.AkashLease, error) {
	var out api.AkashLeaseList
	if err := c.do(ctx, http.MethodGet, "/api/v1/clusters/"+url.PathEscape(cluster)+"/akash/leases", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list Akash leases of cluster %q: %w", cluster, err)
	}
	return out.Leases, nil
}

// WorkspaceAkashLeases lists the lease namespaces of a workspace's own
// Akash account.
func (c *Client) WorkspaceAkashLeases(ctx context.Context, ws string) ([]api.AkashLease, error) {
	var out api.AkashLeaseList
	if err := c.do(ctx, http.MethodGet, wsPath(ws)+"/akash/leases", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list Akash leases of workspace %q: %w", ws, err)
	}
	return out.Leases, nil
}

func newAkashCmd(g *globals) *cobra.Command {
	var cluster, ws string
	leases := &cobra.Command{
		Use:   "leases (--cluster C | --workspace W)",
		Short: "List Akash lease namespaces",
		Long: `List the Akash lease namespaces the hub knows: those a provider cluster's
binding controller reported (--cluster, hub admin; WORKSPACE is the
workspace of the lease owner's account, '-' when the owner has none and the
lease binds nothing), or those of a workspace's own Akash account on every
cluster (--workspace, any member). A lease namespace is served by the
workspace's Akash installs (install create --akash).`,
		Example: "  pullgate-hub akash leases --cluster provider-1\n  pullgate-hub akash leases -w akash-m9l358xunh -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (cluster == "") == (ws == "") {
				return usageErrorf("%s needs --cluster or --workspace, exactly one", cmd.CommandPath())
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			var ls []api.AkashLease
			if cluster != "" {
				ls, err = s.c.ClusterAkashLeases(cmd.Context(), cluster)
			} else {
				ls, err = s.c.WorkspaceAkashLeases(cmd.Context(), ws)
			}
			if err != nil {
				return err
			}
			if s.json {
				if ls == nil {
					ls = []api.AkashLease{}
				}
				return s.printJSON(ls)
			}
			cols := []string{"CLUSTER", "NAMESPACE", "OWNER", "DSEQ", "GSEQ", "OSEQ", "SEEN"}
			if cluster != "" {
				cols = append(cols, "WORKSPACE")
			}
			t := newTable(s.out, cols...)
			for _, l := range ls {
				row := []string{l.Cluster, l.Namespace, l.Owner, strconv.FormatUint(l.DSeq, 10),
					strconv.FormatUint(uint64(l.GSeq), 10), strconv.FormatUint(uint64(l.OSeq), 10), fmtTime(l.SeenAt)}
				if cluster != "" {
					row = append(row, dash(l.Workspace))
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	leases.Flags().StringVar(&cluster, "cluster", "", "a provider cluster's lease namespaces (hub admin)")
	leases.Flags().StringVarP(&ws, "workspace", "w", "", "the lease namespaces of the workspace's Akash account")
	return group("akash", "Akash provider leases",
		`A cluster run by an Akash provider (cluster create --akash-provider) has a
binding controller that reports its lease namespaces to the hub; installs
created with --akash are served in their account's lease namespaces.`,
		"  pullgate-hub akash leases --cluster provider-1", leases)
}
