package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"
)

// table writes tab-separated rows aligned in columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		// A tab or newline inside a value would break the columns; any
		// other control or format character (an escape sequence, a bidi
		// override) in a name another user chose would act on the
		// terminal or make the text read as something else.
		cols[i] = strings.Map(func(r rune) rune {
			switch {
			case r == '\t' || r == '\n' || r == '\r':
				return ' '
			case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
				return '?'
			}
			return r
		}, c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func newWorkspaceCmd(g *globals) *cobra.Command {
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a workspace",
		Long:    "Create a workspace: a tenant that owns registry credentials and installs.\nNames are 1 to 64 lowercase letters, digits, '.', '_' or '-'.",
		Example: "  pullgate-hub workspace create acme",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			ws, err := s.c.CreateWorkspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.say(ws, "workspace %q created", ws.Name)
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List workspaces",
		Example: "  pullgate-hub workspace list\n  pullgate-hub workspace list -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			wss, err := s.c.ListWorkspaces(cmd.Context())
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(wss)
			}
			t := newTable(s.out, "NAME", "CREATED")
			for _, ws := range wss {
				t.row(ws.Name, fmtTime(ws.CreatedAt))
			}
			return t.flush()
		},
	}
	var force bool
	del := &cobra.Command{
		Use:     "delete NAME [--force]",
		Aliases: []string{"rm"},
		Short:   "Delete a workspace (with --force: its installs, clusters and registries too)",
		Long: `Delete a workspace. While it still has installs or clusters of its own the
delete is refused, and what it has is listed. With --force everything goes
with it, in one step, and is listed: its installs (their tokens stop working
at once), its registry credentials, and its own clusters with their node
identities and join tokens (their agents drop every cached token and are
disconnected). Shared clusters stay. Audit events are kept.

A workspace with registry credentials only is deleted without --force.`,
		Example: "  pullgate-hub workspace delete acme\n  pullgate-hub workspace delete acme --force",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			out, err := s.c.DeleteWorkspace(cmd.Context(), args[0], force)
			var ae *APIError
			if errors.As(err, &ae) && ae.StatusCode == http.StatusConflict && !force {
				return fmt.Errorf("%w\n(give --force to delete the workspace with all of it)", err)
			}
			if err != nil {
				return err
			}
			if !s.json {
				if len(out.Installs) > 0 {
					fmt.Fprintf(s.err, "deleted installs (their tokens stopped working): %s\n", strings.Join(out.Installs, ", "))
				}
				if len(out.Clusters) > 0 {
					cs := make([]string, len(out.Clusters))
					for i, c := range out.Clusters {
						cs[i] = fmt.Sprintf("%s (%d node(s))", c.Name, c.Nodes)
					}
					fmt.Fprintf(s.err, "deleted clusters (their nodes can no longer connect): %s\n", strings.Join(cs, ", "))
				}
				if len(out.Registries) > 0 {
					fmt.Fprintf(s.err, "deleted registry credentials: %s\n", strings.Join(out.Registries, ", "))
				}
			}
			return s.say(out, "workspace %q deleted", args[0])
		},
	}
	del.Flags().BoolVar(&force, "force", false, "delete the workspace's installs, clusters and registry credentials with it instead of refusing")
	return group("workspace", "Manage workspaces (tenants)",
		"A workspace is a tenant: it owns registry credentials and installs.",
		"  pullgate-hub workspace create acme\n  pullgate-hub workspace list\n  pullgate-hub workspace delete acme",
		create, list, del)
}
