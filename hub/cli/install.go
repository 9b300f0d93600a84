package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
)

func newInstallCmd(g *globals) *cobra.Command {
	return group("install", "Manage installs and mint install tokens",
		`An install is one deployment's right to pull: bound to a workspace, a
cluster and a namespace (+ service account), with an allow-list of
repository patterns. Disabling or deleting it revokes its tokens at once.`,
		`  pullgate-hub install create -w acme --name web --repo 'ghcr.io/acme/*' --cluster prod --namespace shop
  pullgate-hub install update -w acme web --cluster edge
  pullgate-hub install list -w acme
  pullgate-hub install token acme/web --ttl 1h`,
		newInstallCreateCmd(g), newInstallListCmd(g), newInstallGetCmd(g), newInstallUpdateCmd(g),
		newInstallSetEnabledCmd(g, true), newInstallSetEnabledCmd(g, false),
		newInstallDeleteCmd(g), newInstallTokenCmd(g))
}

func newInstallCreateCmd(g *globals) *cobra.Command {
	var (
		ws, name, cluster, namespace, sa, akash string
		repos                                   []string
		allRepos                                bool
	)
	c := &cobra.Command{
		Use:   "create --workspace W --name N (--repo PATTERN ... | --all-repos) [--cluster C --namespace NS | --akash all|DSEQ] [--service-account SA]",
		Short: "Create an install",
		Long: `Create an install. Each --repo is an allow-list pattern over host/repository:
'*' matches within one path component, '**' any number of components
(ghcr.io/acme/*, ghcr.io/acme/**, docker.io/library/nginx). --all-repos lets
the install pull everything the workspace's registries reach; one of the two
is required, so a broad grant is always explicit.

A pattern that no registry credential of the workspace covers is warned
about (on stderr): its pulls would be refused, so it is most likely a typo.

--akash all (or a deployment sequence number) makes it an Akash install:
instead of a cluster and namespace it is served in the lease namespaces of
the workspace's Akash account on every provider cluster of this hub (with a
dseq, only that deployment's leases). --service-account still narrows it.`,
		Example: `  pullgate-hub install create -w acme --name web --repo 'ghcr.io/acme/*' --repo docker.io/nginx
  pullgate-hub install create -w acme --name api --all-repos --cluster prod --namespace shop --service-account puller
  pullgate-hub install create -w akash-m9l358xunh --name app --repo 'ghcr.io/acme/*' --akash all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace", "name"); err != nil {
				return err
			}
			if err := reposOrAll(cmd, repos, allRepos); err != nil {
				return err
			}
			if akash != "" && (cluster != "" || namespace != "") {
				return usageErrorf("%s: --akash excludes --cluster and --namespace (an Akash install is served in its lease namespaces)", cmd.CommandPath())
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			in, err := s.c.CreateInstall(cmd.Context(), ws, api.CreateInstallRequest{
				Name: name, Repos: repos, AllRepos: allRepos, Cluster: cluster, Namespace: namespace, ServiceAccount: sa, Akash: akash,
			})
			if err != nil {
				return err
			}
			warnInstall(s, in)
			return s.say(in, "install %q created in workspace %q (repos: %s)", in.Name, ws, reposText(in.Repos))
		},
	}
	addWorkspaceFlag(c, &ws)
	f := c.Flags()
	f.StringVar(&name, "name", "", "install name (required)")
	f.StringArrayVar(&repos, "repo", nil, "allowed repository pattern (repeatable; this or --all-repos is required)")
	f.BoolVar(&allRepos, "all-repos", false, "allow everything the workspace's registries reach")
	f.StringVar(&cluster, "cluster", "", "cluster the install is bound to")
	f.StringVar(&namespace, "namespace", "", "Kubernetes namespace of the deployment")
	f.StringVar(&sa, "service-account", "", "Kubernetes service account of the deployment (needs --namespace or --akash)")
	f.StringVar(&akash, "akash", "", "serve the install in the workspace's Akash lease namespaces: all, or a deployment sequence number (dseq)")
	return c
}

// akashText shows an install's Akash scope.
func akashText(a string) string {
	if a == "" {
		return "-"
	}
	if a == "all" {
		return "all leases"
	}
	return "dseq " + a
}

// reposOrAll makes a broad grant explicit: exactly one of --repo and
// --all-repos.
func reposOrAll(cmd *cobra.Command, repos []string, all bool) error {
	if len(repos) == 0 && !all {
		return usageErrorf("%s needs --repo patterns or --all-repos (everything the workspace's registries reach)", cmd.CommandPath())
	}
	if len(repos) > 0 && all {
		return usageErrorf("%s: --repo and --all-repos exclude each other", cmd.CommandPath())
	}
	return nil
}

// warnInstall prints an install's warnings (patterns no credential
// covers) to stderr in table mode.
func warnInstall(s *session, in api.Install) {
	if s.json {
		return
	}
	for _, w := range in.Warnings {
		fmt.Fprintf(s.err, "warning: install %q: %s\n", in.Name, w)
	}
}

func reposText(repos []string) string {
	if len(repos) == 0 {
		return "all"
	}
	return strings.Join(repos, ",")
}

func newInstallListCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "list --workspace W",
		Aliases: []string{"ls"},
		Short:   "List a workspace's installs",
		Example: "  pullgate-hub install list -w acme\n  pullgate-hub install list -w acme -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			ins, err := s.c.ListInstalls(cmd.Context(), ws)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(ins)
			}
			t := newTable(s.out, "NAME", "CLUSTER", "NAMESPACE", "SERVICE-ACCOUNT", "AKASH", "REPOS", "ENABLED", "GENERATION", "UPDATED")
			for _, in := range ins {
				t.row(in.Name, dash(in.Cluster), dash(in.Namespace), dash(in.ServiceAccount), akashText(in.Akash), reposText(in.Repos),
					yesNo(in.Enabled), strconv.FormatInt(in.Generation, 10), fmtTime(in.UpdatedAt))
			}
			return t.flush()
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newInstallGetCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "get --workspace W NAME",
		Short:   "Show an install",
		Example: "  pullgate-hub install get -w acme web",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			in, err := s.c.GetInstall(cmd.Context(), ws, args[0])
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(in)
			}
			t := newTable(s.out, "NAME", in.Name)
			t.row("CLUSTER", dash(in.Cluster))
			t.row("NAMESPACE", dash(in.Namespace))
			t.row("SERVICE-ACCOUNT", dash(in.ServiceAccount))
			t.row("AKASH", akashText(in.Akash))
			t.row("REPOS", reposText(in.Repos))
			t.row("ENABLED", yesNo(in.Enabled))
			t.row("GENERATION", strconv.FormatInt(in.Generation, 10))
			t.row("CREATED", fmtTime(in.CreatedAt))
			t.row("UPDATED", fmtTime(in.UpdatedAt))
			return t.flush()
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newInstallUpdateCmd(g *globals) *cobra.Command {
	var (
		ws, cluster, namespace, sa, akash string
		repos                             []string
		allRepos                          bool
	)
	c := &cobra.Command{
		Use:   "update --workspace W NAME [--repo PATTERN ... | --all-repos] [--cluster C] [--namespace NS] [--service-account SA] [--akash all|DSEQ|'']",
		Short: "Change an install's allow-list or bind it to a cluster",
		Long: `Change an install. --repo (repeatable) replaces its repository allow-list,
--all-repos allows everything the workspace's registries reach. --cluster
binds it to a cluster (--cluster '' unbinds it), --namespace and
--service-account change what it is matched to; a binding is checked as on
create (the cluster exists, is the workspace's own or shared, and a shared
one needs a namespace no other workspace uses). --akash all or a dseq makes
it an Akash install (unbind it first: --cluster ''), --akash '' ends that;
a changed scope bumps the generation.

A changed allow-list or binding bumps the install's generation: tokens
minted before stop working (agents fetch new ones; mint new ones for
manual use). Patterns no registry credential covers are warned about.`,
		Example: `  pullgate-hub install update -w acme web --repo 'ghcr.io/acme/web' --repo 'ghcr.io/acme/base'
  pullgate-hub install update -w acme web --all-repos
  pullgate-hub install update -w acme web --cluster edge
  pullgate-hub install update -w acme web --cluster shared --namespace shop`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace"); err != nil {
				return err
			}
			f := cmd.Flags()
			binding := f.Changed("cluster") || f.Changed("namespace") || f.Changed("service-account") || f.Changed("akash")
			if len(repos) > 0 && allRepos {
				return usageErrorf("%s: --repo and --all-repos exclude each other", cmd.CommandPath())
			}
			if len(repos) == 0 && !allRepos && !binding {
				return usageErrorf("%s needs --repo patterns or --all-repos, or --cluster, --namespace, --service-account or --akash", cmd.CommandPath())
			}
			req := api.UpdateInstallRequest{AllRepos: allRepos}
			if len(repos) > 0 {
				req.Repos = &repos
			}
			req.Cluster = ifChanged(f, "cluster", cluster)
			req.Namespace = ifChanged(f, "namespace", namespace)
			req.ServiceAccount = ifChanged(f, "service-account", sa)
			req.Akash = ifChanged(f, "akash", akash)
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			in, err := s.c.UpdateInstall(cmd.Context(), ws, args[0], req)
			if err != nil {
				return err
			}
			warnInstall(s, in)
			return s.say(in, "install %q updated (repos: %s, cluster: %s, namespace: %s, akash: %s, generation %d)",
				in.Name, reposText(in.Repos), dash(in.Cluster), dash(in.Namespace), akashText(in.Akash), in.Generation)
		},
	}
	addWorkspaceFlag(c, &ws)
	f := c.Flags()
	f.StringArrayVar(&repos, "repo", nil, "allowed repository pattern (repeatable)")
	f.BoolVar(&allRepos, "all-repos", false, "allow everything the workspace's registries reach")
	f.StringVar(&cluster, "cluster", "", "bind the install to this cluster ('' unbinds it)")
	f.StringVar(&namespace, "namespace", "", "Kubernetes namespace of the deployment")
	f.StringVar(&sa, "service-account", "", "Kubernetes service account of the deployment (needs a namespace or --akash)")
	f.StringVar(&akash, "akash", "", "Akash scope: all, a deployment sequence number (dseq), or '' (not an Akash install)")
	return c
}

func newInstallSetEnabledCmd(g *globals, enabled bool) *cobra.Command {
	var ws string
	verb, short := "enable", "Enable an install (earlier tokens stay revoked; mint new ones)"
	if !enabled {
		verb, short = "disable", "Disable an install (revokes its tokens at once)"
	}
	c := &cobra.Command{
		Use:     verb + " --workspace W NAME",
		Short:   short,
		Example: "  pullgate-hub install " + verb + " -w acme web",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			in, err := s.c.SetInstallEnabled(cmd.Context(), ws, args[0], enabled)
			if err != nil {
				return err
			}
			return s.say(in, "install %q %sd (generation %d)", in.Name, verb, in.Generation)
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newInstallDeleteCmd(g *globals) *cobra.Command {
	var ws string
	c := &cobra.Command{
		Use:     "delete --workspace W NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an install (revokes its tokens at once)",
		Example: "  pullgate-hub install delete -w acme web",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openWorkspace(cmd)
			if err != nil {
				return err
			}
			if err := s.c.DeleteInstall(cmd.Context(), ws, args[0]); err != nil {
				return err
			}
			return s.say(nil, "install %q deleted", args[0])
		},
	}
	addWorkspaceFlag(c, &ws)
	return c
}

func newInstallTokenCmd(g *globals) *cobra.Command {
	var (
		ws  string
		ttl time.Duration
	)
	c := &cobra.Command{
		Use:   "token WORKSPACE/INSTALL [--ttl 10m]",
		Short: "Mint an install token",
		Long: `Mint a short-lived install token. It is valid against this hub only (never
against an upstream registry) and only while the install stays enabled at
its current generation.

In table mode only the token is printed on stdout (so it can be captured
with $(...)); its expiry goes to stderr. -o json prints token, expires_at,
install and workspace.`,
		Example: `  pullgate-hub install token acme/web
  TOKEN=$(pullgate-hub install token acme/web --ttl 1h)
  pullgate-hub install token -w acme web -o json`,
		Args: exactArgs("WORKSPACE/INSTALL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, name, ok := strings.Cut(args[0], "/")
			switch {
			case ok && ws != "" && ws != w:
				return usageErrorf("%s: workspace %q in the argument and --workspace %q differ", cmd.CommandPath(), w, ws)
			case ok:
			case ws != "":
				w, name = ws, args[0]
			default:
				return usageErrorf("%s wants WORKSPACE/INSTALL (or --workspace W INSTALL), got %q", cmd.CommandPath(), args[0])
			}
			if w == "" || name == "" || strings.Contains(name, "/") {
				return usageErrorf("%s wants WORKSPACE/INSTALL, got %q", cmd.CommandPath(), args[0])
			}
			if ttl < 0 {
				return usageErrorf("--ttl %v: must be positive", ttl)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			tok, err := s.c.MintToken(cmd.Context(), w, name, ttl)
			if err != nil {
				return err
			}
			if s.json {
				return s.printJSON(tok)
			}
			fmt.Fprintln(s.out, tok.Token)
			fmt.Fprintf(s.err, "install token for %s/%s expires at %s (in %s)\n", tok.Workspace, tok.Install,
				fmtTime(tok.ExpiresAt), time.Until(tok.ExpiresAt).Round(time.Second))
			return nil
		},
	}
	c.Flags().StringVarP(&ws, "workspace", "w", "", "workspace name, when the argument is INSTALL alone")
	c.Flags().DurationVar(&ttl, "ttl", 10*time.Minute, "token lifetime, 1m to 24h")
	return c
}
