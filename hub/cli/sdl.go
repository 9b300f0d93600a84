package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/pullgate/pullgate/internal/atomicfile"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/hub/sdl"
)

// ImportSDL imports an Akash SDL's (or manifest's) credentials into a
// workspace.
func (c *Client) ImportSDL(ctx context.Context, ws string, req api.SDLImportRequest) (api.SDLImport, error) {
	var out api.SDLImport
	if err := c.do(ctx, http.MethodPost, wsPath(ws)+"/sdl-imports", nil, req, &out); err != nil {
		return out, fmt.Errorf("import SDL into workspace %q: %w", ws, err)
	}
	return out, nil
}

func newSDLCmd(g *globals) *cobra.Command {
	return group("sdl", "Import Akash SDL registry credentials",
		`An Akash SDL may carry registry credentials (services.<name>.credentials).
Importing it turns them into hub state instead of a plaintext pull Secret on
the provider's cluster: one registry credential per host and username, and
one install for the deployment that may pull exactly the SDL's private
images, bound to the lease's cluster and namespace.`,
		"  pullgate-hub sdl import deploy.yaml -w tenant --cluster provider-1 --namespace lease-abc --rewrite deploy.hub.yaml",
		newSDLImportCmd(g))
}

func newSDLImportCmd(g *globals) *cobra.Command {
	var (
		ws, cluster, namespace, install, rewrite, hubHost, credScope string
		dryRun                                                       bool
	)
	c := &cobra.Command{
		Use:   "import FILE --workspace W --cluster C --namespace NS [--install I] [--rewrite OUT] [--dry-run] [--credential-scope host|repository]",
		Short: "Import the registry credentials of an Akash SDL (or provider manifest)",
		Long: `Import the registry credentials of an Akash SDL (v2.0, v2.1 or v2.2 YAML) or
of a provider manifest (JSON list of groups) into a workspace. FILE "-" reads
stdin. The SDL is read as leniently as Akash reads it: x- extension keys and
YAML merge keys (<<) are accepted, and "2", "v2.1" or "2.1.3" as versions.

For every service with a credentials block (host, username and password, as
Akash requires), the workspace gets a registry credential per host and
username (a new secret version only when the password changed), and the
install (--install, default sdl-<service names>) gets an allow-list of
exactly the private repositories, bound to --cluster and --namespace.
Importing the same file again changes nothing.

Two deployments that pull as the same user of the same host share that
credential: when an import changes its password, the report says which other
installs pull through it. --credential-scope repository keeps them apart: one
credential per repository and username (the hub picks the longest matching
prefix), so each deployment keeps its own password.

Everything is checked first: errors name the service, the field and the
line, and a refused import changes nothing. The passwords go to the hub only; nothing printed shows
them.

--rewrite OUT writes the SDL with the private images pointed at the hub
(HUB/<upstream-host>/<repository>:<tag>, HUB from --hub-host, else the hub's
public URL, else the address of --hub) and the credentials blocks removed,
for runtimes that pull in path-prefix form. Everything else, comments
included, is kept. OUT "-" writes to stdout. An image on a registry with a
port cannot be named that way: its image is left as it is (its credentials
go all the same) and a warning says so: its pulls reach the hub through the
nodes' containerd mirror. An image named by tag and digest
(app:1.0@sha256:...) keeps both. A password that would stay behind in a
YAML anchor refuses the rewrite.`,
		Example: `  pullgate-hub sdl import deploy.yaml -w tenant --cluster provider-1 --namespace lease-abc
  pullgate-hub sdl import deploy.yaml -w tenant --cluster provider-1 --namespace lease-abc --dry-run
  pullgate-hub sdl import deploy-b.yaml -w tenant --cluster provider-1 --namespace lease-def --credential-scope repository
  pullgate-hub sdl import deploy.yaml -w tenant --cluster provider-1 --namespace lease-abc --rewrite deploy.hub.yaml --hub-host hub.example.com
  provider-services ... manifest.json | pullgate-hub sdl import - -w tenant --cluster provider-1 --namespace lease-abc --install dseq-1234`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "workspace", "cluster", "namespace"); err != nil {
				return err
			}
			if credScope != sdl.ScopeHost && credScope != sdl.ScopeRepository {
				return usageErrorf("--credential-scope %q: want host or repository", credScope)
			}
			if rewrite != "" && rewrite != "-" && args[0] != "-" && sameFile(rewrite, args[0]) {
				return usageErrorf("--rewrite %s: would overwrite the SDL being imported; write it elsewhere", rewrite)
			}
			data, err := readDocument(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			if len(bytes.TrimSpace(data)) == 0 {
				name := args[0]
				if name == "-" {
					name = "standard input"
				}
				return fmt.Errorf("%s is empty: give an Akash SDL (YAML) or a provider manifest (JSON list of groups)", name)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			req := api.SDLImportRequest{Cluster: cluster, Namespace: namespace, Install: install, DryRun: dryRun,
				Rewrite: rewrite != "", HubHost: hubHost, CredentialScope: credScope}
			if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
				if !json.Valid(t) {
					return fmt.Errorf("%s: starts like a manifest (a JSON list) but is not valid JSON", args[0])
				}
				req.Manifest = t
			} else {
				req.SDL = string(data)
			}
			res, err := s.c.ImportSDL(cmd.Context(), ws, req)
			if err != nil {
				return err
			}
			if rewrite != "" {
				if err := writeRewritten(cmd.OutOrStdout(), rewrite, res.Rewritten); err != nil {
					return err
				}
				if rewrite == "-" {
					// stdout is the document; the report goes to stderr.
					s.out = s.err
				}
			}
			if s.json {
				res.Rewritten = ""
				return s.printJSON(res)
			}
			printImport(s, res, rewrite)
			return nil
		},
	}
	addWorkspaceFlag(c, &ws)
	f := c.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster the deployment runs on (required)")
	f.StringVar(&namespace, "namespace", "", "namespace the deployment runs in (required)")
	f.StringVar(&install, "install", "", "install name (default: sdl- and the SDL's service names)")
	f.StringVar(&rewrite, "rewrite", "", `write the SDL with private images pointed at the hub to this file ("-": stdout)`)
	f.StringVar(&hubHost, "hub-host", "", "host[:port] rewritten images point at (default: the hub's public URL, else the --hub address)")
	f.BoolVar(&dryRun, "dry-run", false, "check and report without changing anything")
	f.StringVar(&credScope, "credential-scope", sdl.ScopeHost, "what one imported credential covers: host (per host and username) or repository (per repository and username, keeps deployments apart)")
	return c
}

// readDocument reads FILE (or stdin for "-"), bounded.
func readDocument(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, sdl.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > sdl.MaxBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes (512 KiB), the limit for an SDL", name, sdl.MaxBytes)
	}
	return data, nil
}

func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// writeRewritten writes the rewritten document to path (atomically) or,
// for "-", to stdout.
func writeRewritten(stdout io.Writer, path, doc string) error {
	if doc == "" {
		return fmt.Errorf("the hub returned no rewritten document")
	}
	if path == "-" {
		_, err := io.WriteString(stdout, doc)
		return err
	}
	return atomicfile.Write(path, strings.NewReader(doc), 0o644)
}

func printImport(s *session, r api.SDLImport, rewrite string) {
	t := newTable(s.out, "SERVICE", "IMAGE", "PRIVATE", "CREDENTIAL", "HUB IMAGE")
	for _, sv := range r.Services {
		name := sv.Name
		if sv.Group != "" {
			name = sv.Group + "/" + sv.Name
		}
		t.row(name, sv.Image, yesNo(sv.Private), dash(sv.Credential), dash(sv.HubImage))
	}
	_ = t.flush()
	if len(r.Credentials) > 0 {
		fmt.Fprintln(s.out)
		t = newTable(s.out, "CREDENTIAL", "HOST", "USERNAME", "KIND", "ACTION", "VERSION", "EXPIRES", "ALSO USED BY")
		for _, c := range r.Credentials {
			t.row(c.Name, c.Host, c.Username, c.Kind, c.Action, strconv.Itoa(c.Version), fmtExpiry(c.ExpiresAt), dash(strings.Join(c.SharedWith, ",")))
		}
		_ = t.flush()
	}
	if in := r.Install; in != nil {
		fmt.Fprintf(s.out, "\ninstall %q %s: cluster %s, namespace %s, generation %d, repositories:\n", in.Name, in.Action, r.Cluster, r.Namespace, in.Generation)
		for _, repo := range in.Repos {
			fmt.Fprintf(s.out, "  %s\n", repo)
		}
	}
	for _, c := range r.Credentials {
		for _, w := range c.Warnings {
			fmt.Fprintf(s.err, "warning: credential %q: %s\n", c.Name, w)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	if rewrite != "" {
		fmt.Fprintf(s.out, "rewritten SDL written to %s\n", rewrite)
	}
	if r.DryRun {
		fmt.Fprintln(s.out, "dry run: nothing was changed")
	}
}
