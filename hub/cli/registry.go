package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/upstream"
)

func newRegistryCmd(g *globals) *cobra.Command {
	return group("registry", "Manage upstream registry credentials",
		`A registry credential lets the hub pull from an upstream registry on a
workspace's behalf. Its password or token is read from stdin only, sealed
(AES-256-GCM) at the hub and never shown again: list, get and update print
metadata only.`,
		`  printf '%s' "$GHCR_PAT" | pullgate-hub registry add -w acme --name gh --host ghcr.io/acme --kind token --password-stdin
  pullgate-hub registry list -w acme
  pullgate-hub registry test -w acme gh --repo acme/app`,
		newRegistryAddCmd(g), newRegistryListCmd(g), newRegistryGetCmd(g), newRegistryUpdateCmd(g),
		newRegistrySetEnabledCmd(g, true), newRegistrySetEnabledCmd(g, false),
		newRegistryDeleteCmd(g), newRegistryTestCmd(g))
}

func newRegistryAddCmd(g *globals) *cobra.Command {
	var (
		ws, name, host, endpoint, kind, username string
		passwordStdin, insecure, allowPrivate    bool
		realmHosts                               []string
		kf                                       kindFlags
	)
	c := &cobra.Command{
		Use:   "add --workspace W --name N --host H --password-stdin",
		Short: "Add a registry credential (password from stdin)",
		Long: `Add a registry credential to a workspace.

The password (or access token) is read from stdin only, so it never shows
up in shell history or the process list; one trailing newline is removed.
On a terminal you are prompted for it without echo.

--host is the upstream host as images name it, optionally with a repository
prefix that scopes the credential (ghcr.io/org-a): the longest matching
prefix picks the credential for a pull. --endpoint is where the registry API
answers when that is not https://<host>.

` + networkHelp + `

` + kindsHelp,
		Example: `  printf '%s' "$GHCR_PAT" | pullgate-hub registry add -w acme --name gh --host ghcr.io/acme --kind token --password-stdin
  pullgate-hub registry add -w acme --name hub --host docker.io --username acmebot --password-stdin < dockerhub.pat
  pullgate-hub registry add -w acme --name corp --host registry.corp --endpoint http://10.0.0.5:5000 --allow-private-network --username ci --password-stdin < pw.txt
  pullgate-hub registry add -w acme --name harbor --host harbor.corp.example --realm-host auth.corp.example --username ci --password-stdin < pw.txt
  printf '%s' "$AWS_SECRET_ACCESS_KEY" | pullgate-hub registry add -w acme --name ecr --host 123456789012.dkr.ecr.us-east-1.amazonaws.com --aws-access-key-id "$AWS_ACCESS_KEY_ID" --password-stdin
  aws ecr get-login-password | pullgate-hub registry add -w acme --name ecr-tmp --host 123456789012.dkr.ecr.us-east-1.amazonaws.com --password-stdin
  printf '%s' "$SP_SECRET" | pullgate-hub registry add -w acme --name acr --host acme.azurecr.io --azure-tenant-id "$TENANT" --azure-client-id "$APP_ID" --password-stdin
  pullgate-hub registry add -w acme --name gar --host europe-west1-docker.pkg.dev --password-stdin < key.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace", "name", "host"); err != nil {
				return err
			}
			if !passwordStdin {
				return usageErrorf("%s needs --password-stdin: the password is read from stdin only", cmd.CommandPath())
			}
			ecrP, acrP, err := kf.params(cmd)
			if err != nil {
				return err
			}
			req := api.CreateRegistryRequest{
				Name: name, Host: host, Endpoint: endpoint, Kind: kind, Username: username,
				Insecure: insecure, ECR: ecrP, ACR: acrP,
				AllowPrivateNetwork: allowPrivate, RealmHosts: realmHosts,
			}
			// Every flag is checked before the password is read: a typo
			// must not cost a typed or piped secret.
			if _, _, err := api.CheckCreateRegistry(req); err != nil {
				return usageErrorf("%s: %v", cmd.CommandPath(), err)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			req.Password = api.Password(pw)
			reg, err := s.c.AddRegistry(cmd.Context(), ws, req)
			if err != nil {
				return err
			}
			warn(s, reg)
			return s.say(reg, "registry %q added to workspace %q (host %s, kind %s, secret version %d)", reg.Name, ws, reg.Host, reg.Kind, reg.Version)
		},
	}
	addWorkspaceFlag(c, &ws)
	f := c.Flags()
	f.StringVar(&name, "name", "", "credential name (required)")
	f.StringVar(&host, "host", "", "upstream host, optionally with a repository prefix: ghcr.io, ghcr.io/org, docker.io (required)")
	f.StringVar(&endpoint, "endpoint", "", "registry API address when not https://<host>: http(s)://host[:port]")
	f.StringVar(&kind, "kind", "", "credential kind: basic, token, ecr, acr or gcp (default: from the host, else basic)")
	f.StringVar(&username, "username", "", "username (required for kind basic)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password or token from stdin (required)")
	f.BoolVar(&insecure, "insecure", false, "plain HTTP to the upstream (default: HTTPS only, also for loopback and private hosts)")
	f.BoolVar(&allowPrivate, "allow-private-network", false, "let the upstream resolve to loopback, private or other special-purpose addresses")
	f.StringArrayVar(&realmHosts, "realm-host", nil, "token-realm host (host or host:port) to trust besides the upstream's own; repeatable")
	addKindFlags(f, &kf)
	return c
}

// networkHelp explains the network policy flags of add and update.
const networkHelp = `Network policy. The hub uses HTTPS only unless the endpoint is http:// (then
plain HTTP only) or --insecure is given (HTTPS first, then HTTP). It refuses to connect to loopback, private (RFC 1918),
link-local, CGNAT, unique-local and other special-purpose addresses, checked
on the address actually dialled (so DNS cannot steer it there), unless
--allow-private-network is given: use it for a registry on your own network.
A Bearer token realm must be the upstream's own host or a known token host
(auth.docker.io for Docker Hub, ...); name any other with --realm-host.`

func newRegistryListCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "list --workspace W",
		Aliases: []string{"ls"},
		Short:   "List a workspace's registry credentials (metadata only)",
		Example: "  pullgate-hub registry list -w acme\n  pullgate-hub registry list -w acme -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			regs, err := s.c.ListRegistries(cmd.Context(), ws)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(regs)
			}
			t := newTable(s.out, "NAME", "HOST", "ENDPOINT", "KIND", "USERNAME", "ENABLED", "INSECURE", "VERSION", "UPDATED", "AUTH", "EXPIRES")
			for _, r := range regs {
				t.row(r.Name, r.Host, dash(r.Endpoint), r.Kind, dash(r.Username), yesNo(r.Enabled), yesNo(r.Insecure),
					strconv.Itoa(r.Version), fmtTime(r.UpdatedAt), dash(r.Auth), fmtExpiry(r.ExpiresAt))
			}
			return t.flush()
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func printRegistry(s *session, r api.Registry) error {
	if s.json {
		return s.printJSON(r)
	}
	t := newTable(s.out, "NAME", r.Name)
	t.row("HOST", r.Host)
	t.row("ENDPOINT", dash(r.Endpoint))
	t.row("KIND", r.Kind)
	t.row("USERNAME", dash(r.Username))
	t.row("ENABLED", yesNo(r.Enabled))
	t.row("INSECURE", yesNo(r.Insecure))
	t.row("PRIVATE NETWORK", yesNo(r.AllowPrivateNetwork))
	if len(r.RealmHosts) > 0 {
		t.row("REALM HOSTS", strings.Join(r.RealmHosts, ", "))
	}
	t.row("VERSION", strconv.Itoa(r.Version))
	t.row("CREATED", fmtTime(r.CreatedAt))
	t.row("UPDATED", fmtTime(r.UpdatedAt))
	t.row("AUTH", dash(r.Auth))
	t.row("EXPIRES", fmtExpiry(r.ExpiresAt))
	for _, w := range r.Warnings {
		t.row("WARNING", w)
	}
	return t.flush()
}

func newRegistryGetCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "get --workspace W NAME",
		Short:   "Show a registry credential (metadata only)",
		Example: "  pullgate-hub registry get -w acme gh",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			r, err := s.c.GetRegistry(cmd.Context(), ws, args[0])
			if err != nil {
				return err
			}
			return printRegistry(s, r)
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newRegistryUpdateCmd(g *globals) *cobra.Command {
	var (
		ws, username, endpoint, kind          string
		passwordStdin, insecure, allowPrivate bool
		realmHosts                            []string
		kf                                    kindFlags
	)
	c := &cobra.Command{
		Use:   "update --workspace W NAME [--kind K --password-stdin] [--username U] [--endpoint E] [--password-stdin] [--insecure=true|false] [--allow-private-network=true|false] [--realm-host H]...",
		Short: "Update a registry credential",
		Long: `Update a registry credential. Only the flags given change.

A new password (read from stdin with --password-stdin) is stored as a new
secret version; the proxy uses it for the next pull. --endpoint "" clears
the endpoint. --realm-host replaces the trusted realm hosts; --realm-host ""
clears them. --kind changes the kind: the secret's form changes with it, so
a new one is read with --password-stdin, the old kind's parameters are
dropped and the username is kept only between basic, token and acr.

` + networkHelp,
		Example: `  printf '%s' "$NEW_PAT" | pullgate-hub registry update -w acme gh --password-stdin
  pullgate-hub registry update -w acme gh --username newbot
  pullgate-hub registry update -w acme corp --insecure=false
  pullgate-hub registry update -w acme corp --allow-private-network
  printf '%s' "$GHCR_PAT" | pullgate-hub registry update -w acme gh --kind token --password-stdin`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace"); err != nil {
				return err
			}
			f := cmd.Flags()
			var req api.UpdateRegistryRequest
			if f.Changed("kind") {
				if !passwordStdin {
					return usageErrorf("%s: --kind changes the form of the secret: give the new one with --password-stdin", cmd.CommandPath())
				}
				req.Kind = &kind
			}
			req.Username = ifChanged(f, "username", username)
			req.Endpoint = ifChanged(f, "endpoint", endpoint)
			req.Insecure = ifChanged(f, "insecure", insecure)
			req.AllowPrivateNetwork = ifChanged(f, "allow-private-network", allowPrivate)
			if f.Changed("realm-host") {
				hosts := []string{}
				for _, h := range realmHosts {
					if h != "" {
						hosts = append(hosts, h)
					}
				}
				req.RealmHosts = &hosts
			}
			var err error
			if req.ECR, req.ACR, err = kf.params(cmd); err != nil {
				return err
			}
			if !passwordStdin && req.Username == nil && req.Endpoint == nil && req.Insecure == nil && req.ECR == nil && req.ACR == nil &&
				req.AllowPrivateNetwork == nil && req.RealmHosts == nil {
				return usageErrorf("%s: nothing to update: give --kind, --username, --endpoint, --password-stdin, --insecure, --allow-private-network or --realm-host", cmd.CommandPath())
			}
			if err := api.CheckUpdateRegistry(req); err != nil {
				return usageErrorf("%s: %v", cmd.CommandPath(), err)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			if passwordStdin {
				pw, err := readPassword(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				p := api.Password(pw)
				req.Password = &p
			}
			r, err := s.c.UpdateRegistry(cmd.Context(), ws, args[0], req)
			if err != nil {
				return err
			}
			warn(s, r)
			return s.say(r, "registry %q updated (secret version %d)", r.Name, r.Version)
		},
	}
	addWorkspaceFlag(c, &ws)
	f := c.Flags()
	f.StringVar(&kind, "kind", "", "new credential kind: basic, token, ecr, acr or gcp (with --password-stdin)")
	f.StringVar(&username, "username", "", "new username")
	f.StringVar(&endpoint, "endpoint", "", `new endpoint, http(s)://host[:port] ("" clears it)`)
	f.BoolVar(&passwordStdin, "password-stdin", false, "read a new password or token from stdin")
	f.BoolVar(&insecure, "insecure", false, "plain HTTP to the upstream (--insecure=false turns it off)")
	f.BoolVar(&allowPrivate, "allow-private-network", false, "let the upstream resolve to special-purpose addresses (=false turns it off)")
	f.StringArrayVar(&realmHosts, "realm-host", nil, `token-realm host to trust; repeatable, replaces the list ("" clears it)`)
	addKindFlags(f, &kf)
	return c
}

func newRegistrySetEnabledCmd(g *globals, enabled bool) *cobra.Command {
	var ws string
	verb, short := "enable", "Enable a registry credential"
	if !enabled {
		verb, short = "disable", "Disable a registry credential (the proxy stops using it at once)"
	}
	c := &cobra.Command{
		Use:     verb + " --workspace W NAME",
		Short:   short,
		Example: "  pullgate-hub registry " + verb + " -w acme gh",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			r, err := s.c.SetRegistryEnabled(cmd.Context(), ws, args[0], enabled)
			if err != nil {
				return err
			}
			return s.say(r, "registry %q %sd", r.Name, verb)
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newRegistryDeleteCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "delete --workspace W NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a registry credential and all its secret versions",
		Example: "  pullgate-hub registry delete -w acme gh",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			if err := s.c.DeleteRegistry(cmd.Context(), ws, args[0]); err != nil {
				return err
			}
			return s.say(nil, "registry %q deleted", args[0])
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

// checkFailed reports whether a registry test did not get as far as it
// should have.
func checkFailed(r upstream.CheckResult) bool {
	return r.Error != "" || !r.Reachable || !r.Authenticated || (r.Repository != "" && !r.CanPull)
}

func newRegistryTestCmd(g *globals) *cobra.Command {
	var ws, repo string
	c := &cobra.Command{
		Use:   "test --workspace W NAME [--repo R]",
		Short: "Test a registry credential against its upstream",
		Long: `Run a real handshake with the credential's upstream, through the hub: reach
/v2/, authenticate with the stored secret and, with --repo, list the
repository's tags. Each step is printed; the command fails (exit 1) when
the handshake does not go through.`,
		Example: "  pullgate-hub registry test -w acme gh\n  pullgate-hub registry test -w acme gh --repo acme/app",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			res, err := s.c.TestRegistry(cmd.Context(), ws, args[0], repo)
			if err != nil {
				return err
			}
			if s.json {
				if err := s.printJSON(res); err != nil {
					return err
				}
			} else {
				printCheck(s, res)
			}
			if checkFailed(res) {
				msg := res.Error
				if msg == "" {
					msg = "the handshake did not complete"
				}
				return fmt.Errorf("registry %q: test failed: %s", args[0], msg)
			}
			return nil
		},
	}
	addWorkspaceFlag(c, &ws)
	c.Flags().StringVar(&repo, "repo", "", "repository to list tags of (org/app or host/org/app)")
	return c
}

// printCheck prints each step of a registry test: ok, FAILED, or skipped
// when an earlier step failed.
func printCheck(s *session, r upstream.CheckResult) {
	t := newTable(s.out, "STEP", "RESULT", "DETAIL")
	failed, shown := false, false
	// The first failed step carries the error (the check stops there),
	// without the step's own name repeated.
	step := func(name string, ok bool, detail string) {
		switch {
		case failed:
			t.row(name, "skipped", "")
		case ok:
			t.row(name, "ok", detail)
		default:
			failed = true
			why := r.Error
			for _, p := range []string{"authenticate: ", "list tags of " + r.Repository + ": "} {
				why = strings.TrimPrefix(why, p)
			}
			if why == "" {
				why = "-"
			}
			shown = r.Error != ""
			t.row(name, "FAILED", why)
		}
	}
	if r.TokenSource != "" {
		step("obtain token: "+r.TokenSource, r.TokenObtained, "expires "+fmtExpiry(r.ExpiresAt))
	}
	step("reach "+dash(r.Upstream), r.Reachable, "/v2/ answered")
	scheme := r.AuthScheme
	if scheme == "" {
		scheme = "none"
	}
	step("authenticate", r.Authenticated, "scheme "+scheme)
	if r.Repository != "" {
		step("list tags of "+r.Repository, r.CanPull, "pull access")
	}
	_ = t.flush()
	if r.Kind != "" {
		fmt.Fprintf(s.out, "kind %s, auth %s", r.Kind, dash(r.Auth))
		if r.TokenSource == "" && r.ExpiresAt != nil {
			fmt.Fprintf(s.out, ", expires %s", fmtExpiry(r.ExpiresAt))
		}
		fmt.Fprintln(s.out)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(s.out, "warning: %s\n", w)
	}
	if r.Error != "" && !shown {
		fmt.Fprintf(s.out, "upstream error: %s\n", r.Error)
	}
}
