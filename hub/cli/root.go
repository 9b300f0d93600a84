// Package cli is pullgate-hub's operator command line: workspaces, registry
// credentials, installs, install tokens and the audit trail, all through
// the hub's REST API (package api).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/internal/version"
)

// Defaults of the global flags.
const (
	DefaultHub       = "http://127.0.0.1:5080"
	DefaultTokenFile = "./pullgate-data/admin.token"
)

// Environment variables read by the global flags.
const (
	EnvHub   = "PULLGATE_HUB"
	EnvToken = "PULLGATE_TOKEN"
)

// Exit codes of Execute.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// UsageErrorf is a usage error (exit 2) for commands built outside this
// package (serve's flag checks).
func UsageErrorf(format string, args ...any) error { return usageErrorf(format, args...) }

// IsUsageError reports whether err is a command-line usage error.
func IsUsageError(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	// Errors cobra makes itself (for commands added through NewRoot's
	// extra argument, which may not use our wrappers).
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "required flag(s) ",
		"flag needs an argument", "invalid argument ", "bad flag syntax", "accepts ", "requires at least ",
		"requires at most ", "if any flags in the group "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// globals are the persistent flags shared by every command.
type globals struct {
	hub       string
	token     string
	tokenFile string
	output    string
	timeout   time.Duration
}

// NewRoot returns the pullgate-hub command with the operator commands and
// the extra commands (the hub's own `serve`) added.
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "pullgate-hub",
		Short: "The pullgate hub and its operator CLI",
		Long: `pullgate-hub runs the pullgate hub and manages it through its REST API.

The hub keeps upstream registry credentials encrypted, proxies image pulls
with them and hands clusters short-lived install tokens that work against
the hub only. Operator commands talk to a running hub:

  workspace   tenants that own registries and installs
  registry    upstream registry credentials (passwords never leave the hub)
  install     one deployment's right to pull, and its install tokens
  audit       the trail of proxied pulls
  sdl         import an Akash SDL's registry credentials as hub state
  cache       the pull-through cache: stats, list, evict, warm
  member      a workspace's members and their roles (owner, operator, viewer)
  token       users' API tokens
  user        delete a user with its tokens and sessions
  whoami      who the token signs in as
  activity    who changed what: the audit of operator actions
  tenant      Akash tenants: log in with the account's key (no token needed)

They find the hub with --hub (or $` + EnvHub + `) and authenticate with the
admin token or a user's API token (pgu_...) from --token, $` + EnvToken + `
or --token-file, in that order. A user may do what its workspace roles
allow; the admin everything.`,
		Example: `  pullgate-hub workspace create acme
  printf '%s' "$GHCR_PAT" | pullgate-hub registry add -w acme --name gh --host ghcr.io --kind token --password-stdin
  pullgate-hub install create -w acme --name web --repo 'ghcr.io/acme/*'
  pullgate-hub install token acme/web --ttl 1h
  pullgate-hub audit -w acme --since 1h --follow`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE:          missingSubcommand,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.Version = version.Version()
	root.SetVersionTemplate(version.String("pullgate-hub") + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.hub, "hub", "", "hub URL (env "+EnvHub+", default "+DefaultHub+")")
	pf.StringVar(&g.token, "token", "", "admin token or API token (env "+EnvToken+"; else read from --token-file)")
	pf.StringVar(&g.tokenFile, "token-file", DefaultTokenFile, "file holding the admin or API token, used when neither --token nor "+EnvToken+" is set")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "timeout of each request to the hub (0: none)")

	root.AddCommand(newWorkspaceCmd(g), newRegistryCmd(g), newInstallCmd(g), newAuditCmd(g), newClusterCmd(g))
	root.AddCommand(newSDLCmd(g), newAkashCmd(g))
	root.AddCommand(newCacheCmd(g))
	root.AddCommand(newTokenCmd(g), newMemberCmd(g), newUserCmd(g), newWhoamiCmd(g), newActivityCmd(g))
	root.AddCommand(newTenantCmd(g))
	root.AddCommand(extra...)
	return root
}

// Execute runs root and returns the process exit code: 0 on success, 2 for
// usage errors, 1 for anything else. Errors are printed to stderr as
// "error: ...". SIGINT and SIGTERM cancel the command's context (a second
// signal kills the process as usual).
func Execute(ctx context.Context, root *cobra.Command) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second Ctrl-C ends the process
	}()
	root.SilenceErrors = true
	root.SilenceUsage = true
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	stderr := root.ErrOrStderr()
	fmt.Fprintf(stderr, "error: %v\n", err)
	if IsUsageError(err) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitError
}

// ---------------------------------------------------------------------------
// Argument validation that reports usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func missingSubcommand(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	return usageErrorf("%s: missing command (one of: %s)", cmd.CommandPath(), strings.Join(names, ", "))
}

// exactArgs wants exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s wants %d argument(s) %s, got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		for i, a := range args {
			if a == "" {
				return usageErrorf("%s: %s must not be empty", cmd.CommandPath(), names[i])
			}
		}
		return nil
	}
}

// requireFlags fails with a usage error when a named flag is not set.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil || f.Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("%s needs %s", cmd.CommandPath(), strings.Join(missing, " and "))
	}
	return nil
}

// group returns a parent command that only holds subcommands.
func group(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: noArgs, RunE: missingSubcommand}
	c.AddCommand(subs...)
	return c
}

// addWorkspaceFlag adds the --workspace/-w flag.
func addWorkspaceFlag(c *cobra.Command, ws *string) {
	c.Flags().StringVarP(ws, "workspace", "w", "", "workspace name (required)")
}

// ---------------------------------------------------------------------------
// Per-command setup: client and printer.

// session is what a command needs to talk to the hub and print results.
type session struct {
	c    *Client
	out  io.Writer
	err  io.Writer
	json bool
}

// open validates the global flags, finds the admin token and returns a
// session. Errors about flags are usage errors.
// openWorkspace is open for the commands that act on one workspace: it
// first checks that --workspace was given.
func (g *globals) openWorkspace(cmd *cobra.Command) (*session, error) {
	if err := requireFlags(cmd, "workspace"); err != nil {
		return nil, err
	}
	return g.open(cmd)
}

func (g *globals) open(cmd *cobra.Command) (*session, error) { return g.openAs(cmd, false) }

// openPublic is open for the hub's public routes (tenant login): no token.
func (g *globals) openPublic(cmd *cobra.Command) (*session, error) { return g.openAs(cmd, true) }

func (g *globals) openAs(cmd *cobra.Command, public bool) (*session, error) {
	s := &session{out: cmd.OutOrStdout(), err: cmd.ErrOrStderr()}
	switch g.output {
	case "table":
	case "json":
		s.json = true
	default:
		return nil, usageErrorf("--output %q: want table or json", g.output)
	}
	if g.timeout < 0 {
		return nil, usageErrorf("--timeout %v: must not be negative", g.timeout)
	}
	hub := g.hub
	if !cmd.Flags().Changed("hub") {
		if v := os.Getenv(EnvHub); v != "" {
			hub = v
		} else {
			hub = DefaultHub
		}
	}
	if _, err := parseHubURL(hub); err != nil {
		return nil, usageError{err}
	}
	tok := ""
	if !public {
		var err error
		if tok, err = g.adminToken(cmd); err != nil {
			return nil, err
		}
	}
	var err error
	s.c, err = NewClient(hub, tok, &http.Client{Timeout: g.timeout})
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// adminToken is --token, else $PULLGATE_TOKEN, else the token file.
func (g *globals) adminToken(cmd *cobra.Command) (string, error) {
	if cmd.Flags().Changed("token") {
		if t := strings.TrimSpace(g.token); t != "" {
			return t, nil
		}
		return "", usageErrorf("--token is empty")
	}
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(g.tokenFile)
	if err != nil {
		return "", fmt.Errorf("no token: --token not given, $%s not set, and token file: %w", EnvToken, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("no token: --token not given, $%s not set, and token file %s is empty", EnvToken, g.tokenFile)
	}
	return t, nil
}

func (s *session) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.out, "%s\n", b)
	return err
}

// say prints a confirmation line in table mode; JSON mode prints v instead
// (nothing when v is nil).
func (s *session) say(v any, format string, args ...any) error {
	if s.json {
		if v == nil {
			return nil
		}
		return s.printJSON(v)
	}
	_, err := fmt.Fprintf(s.out, format+"\n", args...)
	return err
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
