package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
		// A tab or newline inside a value would break the columns.
		cols[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
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
	del := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a workspace with its registries and installs",
		Long:    "Delete a workspace together with its registry credentials and installs.\nIts install tokens stop working at once. Audit events are kept.",
		Example: "  pullgate-hub workspace delete acme",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			if err := s.c.DeleteWorkspace(cmd.Context(), args[0]); err != nil {
				return err
			}
			return s.say(nil, "workspace %q deleted", args[0])
		},
	}
	return group("workspace", "Manage workspaces (tenants)",
		"A workspace is a tenant: it owns registry credentials and installs.",
		"  pullgate-hub workspace create acme\n  pullgate-hub workspace list\n  pullgate-hub workspace delete acme",
		create, list, del)
}
