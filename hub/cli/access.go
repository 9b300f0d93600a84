package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

// Roles as the help text names them.
const rolesHelp = `Roles, each including the ones below it:
  owner     members, the activity log, and everything an operator does
  operator  registries, installs, install tokens, SDL imports, and the
            workspace's own clusters (join tokens, keys, nodes)
  viewer    reads the workspace and its pull audit`

func newTokenCmd(g *globals) *cobra.Command {
	var user, description string
	var expiresIn time.Duration
	var never bool
	create := &cobra.Command{
		Use:   "create [--user USER] [--expires-in DURATION | --never-expires] [--description TEXT]",
		Short: "Create an API token (printed once)",
		Long: `Create an API token. A user creates tokens for itself; the hub admin
creates a user's first token with --user (add the user to a workspace
first: member add). The token (pgu_...) is printed once, on stdout; the
hub keeps only its SHA-256. It expires after 90 days unless --expires-in
or --never-expires says otherwise, and never after the token (or console
session) that creates it: a user whose token expires creates no token that
outlives it (the default is cut short; a longer --expires-in is refused).

Use it as the admin token is used: --token, $` + EnvToken + ` or --token-file.`,
		Example: `  pullgate-hub token create --user alice --expires-in 720h > alice.token
  PULLGATE_TOKEN=$(cat alice.token) pullgate-hub token create --description laptop`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if never && cmd.Flags().Changed("expires-in") {
				return usageErrorf("--expires-in and --never-expires exclude each other")
			}
			req := api.CreateAPITokenRequest{User: user, Description: description}
			switch {
			case never:
				req.ExpiresIn = "0"
			case cmd.Flags().Changed("expires-in"):
				if expiresIn < time.Minute {
					return usageErrorf("--expires-in %v: want at least 1m", expiresIn)
				}
				req.ExpiresIn = expiresIn.String()
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			t, err := s.c.CreateAPIToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(t)
			}
			fmt.Fprintln(s.out, t.Token)
			exp := "never expires"
			if t.ExpiresAt != nil {
				exp = "expires at " + fmtTime(*t.ExpiresAt)
			}
			fmt.Fprintf(s.err, "API token %s for user %q %s; it is shown this once\n", t.ID, t.User, exp)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "the user the token is for (the hub admin only; default: yourself)")
	create.Flags().StringVar(&description, "description", "", "what the token is for (shown in token list)")
	create.Flags().DurationVar(&expiresIn, "expires-in", api.DefaultAPITokenTTL, "token lifetime")
	create.Flags().BoolVar(&never, "never-expires", false, "a token without expiry")

	var listUser string
	list := &cobra.Command{
		Use:     "list [--user USER]",
		Aliases: []string{"ls"},
		Short:   "List API tokens (yours; the admin: everyone's)",
		Example: "  pullgate-hub token list\n  pullgate-hub token list --user alice",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			ts, err := s.c.ListAPITokens(cmd.Context(), listUser)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(ts)
			}
			t := newTable(s.out, "ID", "USER", "STATE", "CREATED", "EXPIRES", "LAST USED", "DESCRIPTION")
			for _, tk := range ts {
				t.row(tk.ID, tk.User, tk.State, fmtTime(tk.CreatedAt), fmtOptTime(tk.ExpiresAt), fmtOptTime(tk.LastUsedAt), tk.Description)
			}
			return t.flush()
		},
	}
	list.Flags().StringVar(&listUser, "user", "", "only this user's tokens (the hub admin)")

	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API token: it stops working at once, with its console sessions",
		Example: "  pullgate-hub token revoke tok_0123456789abcdef0123456789abcdef",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			// The token itself instead of its id: refuse without echoing
			// it to a terminal or CI log.
			if strings.HasPrefix(args[0], api.APITokenPrefix) {
				return usageErrorf("give the token's id (tok_..., from token list), not the token itself")
			}
			t, err := s.c.RevokeAPIToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.say(t, "API token %s of user %q revoked", t.ID, t.User)
		},
	}
	return group("token", "Manage API tokens of users",
		"API tokens sign users in to the API, the CLI and the console. Each user\nmanages its own; the hub admin bootstraps a user's first one.",
		"  pullgate-hub token create --user alice\n  pullgate-hub token list\n  pullgate-hub token revoke tok_...",
		create, list, revoke)
}

func fmtOptTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func newMemberCmd(g *globals) *cobra.Command {
	var ws, role string
	add := &cobra.Command{
		Use:     "add USER --workspace W --role ROLE",
		Short:   "Add a member (a user that does not exist is created)",
		Long:    "Add a member to a workspace with a role (owners and the hub admin). A user\nthat does not exist yet is created; it signs in with API tokens.\n\n" + rolesHelp,
		Example: "  pullgate-hub member add alice -w acme --role owner\n  pullgate-hub token create --user alice",
		Args:    exactArgs("USER"),
		RunE:    setRole(g, &ws, &role, (*Client).AddMember),
	}
	addWorkspaceFlag(add, &ws)
	add.Flags().StringVar(&role, "role", "", "owner, operator or viewer (required)")

	list := &cobra.Command{
		Use:     "list --workspace W",
		Aliases: []string{"ls"},
		Short:   "List a workspace's members",
		Example: "  pullgate-hub member list -w acme",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			ms, err := s.c.ListMembers(cmd.Context(), ws)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(ms)
			}
			t := newTable(s.out, "USER", "ROLE", "SINCE")
			for _, m := range ms {
				t.row(m.User, m.Role, fmtTime(m.CreatedAt))
			}
			return t.flush()
		},
	}
	addWorkspaceFlag(list, &ws)

	update := &cobra.Command{
		Use:     "update USER --workspace W --role ROLE",
		Short:   "Change a member's role",
		Long:    "Change a member's role. An owner cannot demote the workspace's last owner;\nthe hub admin can.\n\n" + rolesHelp,
		Example: "  pullgate-hub member update bob -w acme --role viewer",
		Args:    exactArgs("USER"),
		RunE:    setRole(g, &ws, &role, (*Client).UpdateMember),
	}
	addWorkspaceFlag(update, &ws)
	update.Flags().StringVar(&role, "role", "", "owner, operator or viewer (required)")

	remove := &cobra.Command{
		Use:     "remove USER --workspace W",
		Aliases: []string{"rm"},
		Short:   "Remove a member from a workspace (the user and its tokens stay)",
		Example: "  pullgate-hub member remove bob -w acme",
		Args:    exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			if err := s.c.RemoveMember(cmd.Context(), ws, args[0]); err != nil {
				return err
			}
			return s.say(nil, "user %q removed from workspace %q", args[0], ws)
		},
	}
	addWorkspaceFlag(remove, &ws)
	return group("member", "Manage a workspace's members and their roles",
		"Members are users with a role in a workspace; owners and the hub admin\nmanage them.\n\n"+rolesHelp,
		"  pullgate-hub member add alice -w acme --role owner\n  pullgate-hub member list -w acme\n  pullgate-hub member update alice -w acme --role operator\n  pullgate-hub member remove alice -w acme",
		add, list, update, remove)
}

// setRole runs `member add` and `member update`: set USER's role in the
// workspace with call.
func setRole(g *globals, ws, role *string, call func(*Client, context.Context, string, string, string) (api.Member, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := requireFlags(cmd, "workspace", "role"); err != nil {
			return err
		}
		s, err := g.open(cmd)
		if err != nil {
			return err
		}
		m, err := call(s.c, cmd.Context(), *ws, args[0], *role)
		if err != nil {
			return err
		}
		return s.say(m, "user %q is %s of workspace %q", m.User, m.Role, m.Workspace)
	}
}

func newUserCmd(g *globals) *cobra.Command {
	del := &cobra.Command{
		Use:     "delete USER",
		Aliases: []string{"rm"},
		Short:   "Delete a user with its memberships, API tokens and console sessions (the hub admin)",
		Example: "  pullgate-hub user delete bob",
		Args:    exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			if err := s.c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			return s.say(nil, "user %q deleted: its tokens and sessions stopped working", args[0])
		},
	}
	return group("user", "Manage users (the hub admin)",
		"Users are created by member add and sign in with API tokens. Removing a\nmember keeps the user; deleting the user ends everything it had.",
		"  pullgate-hub user delete bob", del)
}

func newWhoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show who the token signs in as, and its workspace roles",
		Example: "  pullgate-hub whoami\n  PULLGATE_TOKEN=$(cat alice.token) pullgate-hub whoami",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			p, err := s.c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(p)
			}
			if p.Kind == api.PrincipalAdmin {
				_, err := fmt.Fprintln(s.out, "admin (the hub admin: every workspace)")
				return err
			}
			fmt.Fprintf(s.out, "user %s (token %s)\n", p.Name, p.TokenID)
			t := newTable(s.out, "WORKSPACE", "ROLE")
			for _, w := range p.Workspaces {
				t.row(w.Workspace, w.Role)
			}
			return t.flush()
		},
	}
}

func newActivityCmd(g *globals) *cobra.Command {
	var q ActivityQuery
	c := &cobra.Command{
		Use:   "activity [--workspace W] [--since 1h] [--after ID] [--limit N]",
		Short: "Show who changed what: the audit of operator actions",
		Long: `Show the audit of operator actions (not pulls: see audit): who (user or
admin, and token), what (action and object), in which workspace, when, from
which address, and how it ended (ok, refused, failed). It never holds a
secret. With --workspace: that workspace's (owners and the hub admin);
without: the whole hub's, including refused attempts on other tenants'
objects (the hub admin).`,
		Example: "  pullgate-hub activity -w acme --since 24h\n  pullgate-hub activity -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			as, err := s.c.Activity(cmd.Context(), q)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(as)
			}
			t := newTable(s.out, "ID", "TIME", "WHO", "ACTION", "TARGET", "WORKSPACE", "FROM", "RESULT")
			for _, a := range as {
				who := a.Principal
				if a.PrincipalKind == api.PrincipalUser {
					who = "user:" + who
				}
				t.row(strconv.FormatInt(a.ID, 10), fmtTime(a.Time), who, a.Action, strings.TrimSpace(a.TargetKind+" "+a.Target),
					dash(a.Workspace), a.RemoteAddr, fmt.Sprintf("%s (%d)", a.Result, a.Status))
			}
			return t.flush()
		},
	}
	c.Flags().StringVarP(&q.Workspace, "workspace", "w", "", "workspace name (default: the whole hub, the admin only)")
	c.Flags().StringVar(&q.Since, "since", "", "only since an RFC 3339 time or a duration back from now (1h)")
	c.Flags().Int64Var(&q.After, "after", 0, "only rows with a larger id")
	c.Flags().IntVar(&q.Limit, "limit", 0, "at most this many rows (default 1000)")
	return c
}
