package server

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pullgate/pullgate/hub/cli"
)

// Every flag of pullgate-hub renders cleanly in --help: a phrase in
// backquotes in a flag's usage becomes its value name (pflag), which turned
// `--nats-url` into "--nats-url pullgate-hub nats-config".
func TestHelpFlagNames(t *testing.T) {
	root := cli.NewRoot(Command(), NATSConfigCommand())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " ()") {
				t.Errorf("%s --%s: value name %q in --help", c.CommandPath(), f.Name, name)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)

	// Rendered: serve --help names the flag's value URL.
	root = cli.NewRoot(Command(), NATSConfigCommand())
	root.SetArgs([]string{"serve", "--help"})
	var out bytes.Buffer
	root.SetOut(&out)
	if code := cli.Execute(context.Background(), root); code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	if !strings.Contains(out.String(), "--nats-url URL ") || strings.Contains(out.String(), "--nats-url pullgate-hub") {
		t.Errorf("serve --help:\n%s", out.String())
	}
}

// Flags that are optional do not say "(required)" in --help.
func TestHelpOptionalWorkspace(t *testing.T) {
	for _, args := range [][]string{{"audit"}, {"install", "token"}} {
		root := cli.NewRoot(Command(), NATSConfigCommand())
		c, _, err := root.Find(args)
		if err != nil {
			t.Fatal(err)
		}
		if u := c.Flags().Lookup("workspace").Usage; strings.Contains(u, "required") {
			t.Errorf("%v --workspace: %q", args, u)
		}
	}
}
