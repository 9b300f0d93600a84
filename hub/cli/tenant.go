package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Tenant self-service: an Akash account owner logs in to a hub that runs
// with --akash-tenants by signing the hub's challenge with the account's
// key, and gets an API token for the account's own workspace.

// TenantChallenge asks the hub for a login challenge for address (public
// route: no token needed).
func (c *Client) TenantChallenge(ctx context.Context, address string) (api.TenantChallenge, error) {
	var out api.TenantChallenge
	if err := c.do(ctx, http.MethodPost, "/api/v1/tenant/challenge", nil, api.TenantChallengeRequest{Address: address}, &out); err != nil {
		return out, fmt.Errorf("login challenge for %s: %w", address, err)
	}
	return out, nil
}

// TenantLogin answers a challenge with the account's signature.
func (c *Client) TenantLogin(ctx context.Context, req api.TenantLoginRequest) (api.TenantLogin, error) {
	var out api.TenantLogin
	if err := c.do(ctx, http.MethodPost, "/api/v1/tenant/login", nil, req, &out); err != nil {
		return out, fmt.Errorf("tenant login: %w", err)
	}
	return out, nil
}

// maxWalletAnswer bounds the wallet output read from stdin.
const maxWalletAnswer = 16 << 10

func newTenantCmd(g *globals) *cobra.Command {
	var address, keyFile, workspace, save string
	login := &cobra.Command{
		Use:   "login --address akash1... [--key-file FILE] [--workspace NAME] [--save FILE]",
		Short: "Log in as an Akash account and get an API token for its workspace",
		Long: `Log in to a hub that runs with --akash-tenants as the owner of an Akash
account. The hub issues a challenge naming itself, the account signs it as
Cosmos wallets sign arbitrary data (ADR-036, Keplr's signArbitrary), and
the hub answers with an API token (pgu_..., 30 days) of the account's user,
owner of the account's one workspace. The first login creates the
workspace (--workspace, default akash-<first 10 characters after
"akash1">); later logins return the same workspace and a new token. No
--token is needed.

With --key-file, the file holds the account's secp256k1 private key in
hex, as "provider-services keys export NAME --unarmored-hex --unsafe"
prints it; it must not be readable by group or others (chmod 600). The key
never leaves this process.

With --key-file the key signs only a pullgate login message for --address
that names the --hub URL (give the hub's public URL): anything else the
hub asks to sign is refused, unsigned.

Without --key-file, the command prints the message to sign (and the exact
document a wallet signs) on stderr and reads the wallet's answer from
stdin: the JSON that Keplr's signArbitrary("akashnet-2", address, message)
returns, {"pub_key":{"type":"tendermint/PubKeySecp256k1","value":"..."},
"signature":"..."}. The challenge expires after 5 minutes and allows one
attempt.

The token is printed once, on stdout, or written to --save FILE (mode
0600) for --token-file.`,
		Example: `  pullgate-hub --hub https://hub.example.com tenant login --address akash1... --key-file ./akash.key --save tenant.token
  pullgate-hub --hub https://hub.example.com --token-file tenant.token whoami
  pullgate-hub --hub https://hub.example.com tenant login --address akash1... < keplr-answer.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "address"); err != nil {
				return err
			}
			if err := akash.ValidateAddress(address); err != nil {
				return usageErrorf("--address: %v", err)
			}
			var priv []byte
			if keyFile != "" {
				var err error
				if priv, err = readKeyFile(keyFile); err != nil {
					return err
				}
				defer clear(priv)
			}
			s, err := g.openPublic(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := s.c.TenantChallenge(ctx, address)
			if err != nil {
				return err
			}
			req := api.TenantLoginRequest{Challenge: c.ID, Workspace: workspace}
			if priv != nil {
				// The key signs what the hub sent: only a login to this
				// hub, never other data (ADR-036 signatures of arbitrary
				// data are also Akash provider JWTs) nor another hub's
				// login relayed by this one.
				if err := checkChallenge(c, address, s.c.base); err != nil {
					return err
				}
				pub, sig, err := akash.Sign(priv, address, []byte(c.Message))
				if err != nil {
					return fmt.Errorf("--key-file %s: %w", keyFile, err)
				}
				req.PubKey.Value, req.Signature = base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(sig)
			} else {
				printChallenge(s.err, c)
				if req.PubKey, req.Signature, err = readWalletAnswer(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			l, err := s.c.TenantLogin(ctx, req)
			if err != nil {
				return err
			}
			if save != "" {
				if err := saveToken(save, l.Token); err != nil {
					return err
				}
			}
			return printTenantLogin(s, l, save)
		},
	}
	f := login.Flags()
	f.StringVar(&address, "address", "", "the Akash account address, akash1... (required)")
	f.StringVar(&keyFile, "key-file", "", "file holding the account's private key in hex (mode 600); without it, sign with a wallet and paste its answer on stdin")
	f.StringVar(&workspace, "workspace", "", "name of the workspace the first login creates (default akash-<first 10 characters after akash1>)")
	f.StringVar(&save, "save", "", "write the token to this file (mode 600) instead of printing it, for --token-file")
	return group("tenant", "Akash tenants: log in with the account's key",
		`Tenant self-service on a hub that runs with --akash-tenants: the owner of
an Akash account gets a workspace of its own by proving control of the
account's key.`, "", login)
}

// challengeLines are the lines of a login challenge, in order.
var challengeLines = []string{"pullgate login", "hub: ", "address: ", "nonce: ", "expires: "}

// checkChallenge checks that a challenge is a pullgate login message (the
// hub's challengeMessage) for address and for the hub at base, before the
// key signs it.
func checkChallenge(c api.TenantChallenge, address string, base *url.URL) error {
	refuse := func(why string) error {
		return fmt.Errorf("the hub asks the key to sign a message that is not a login to this hub for %s (%s); nothing was signed: check --hub (it must be the hub's public URL)", address, why)
	}
	lines := strings.Split(c.Message, "\n")
	if c.Address != address || len(lines) != len(challengeLines) || lines[0] != challengeLines[0] {
		return refuse("not a pullgate login message")
	}
	var v [5]string
	for i := 1; i < len(lines); i++ {
		var ok bool
		if v[i], ok = strings.CutPrefix(lines[i], challengeLines[i]); !ok {
			return refuse("not a pullgate login message")
		}
	}
	if u, err := parseHubURL(v[1]); err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) || u.Path != base.Path {
		return refuse(fmt.Sprintf("it names hub %q, this is %s", v[1], base.Redacted()))
	}
	if v[2] != address {
		return refuse(fmt.Sprintf("it names address %q", v[2]))
	}
	if n, err := base64.RawURLEncoding.DecodeString(v[3]); err != nil || len(n) != 16 {
		return refuse("its nonce is malformed")
	}
	if _, err := time.Parse(time.RFC3339, v[4]); err != nil {
		return refuse("its expiry is malformed")
	}
	return nil
}

// readKeyFile reads a hex secp256k1 private key from a file only its owner
// can read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--key-file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--key-file %s: mode %#o lets group or others read the private key: chmod 600 %s", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("--key-file %s: %w", path, err)
	}
	defer clear(raw)
	h := bytes.TrimSpace(raw)
	h = bytes.TrimPrefix(bytes.TrimPrefix(h, []byte("0x")), []byte("0X"))
	priv := make([]byte, hex.DecodedLen(len(h)))
	if _, err := hex.Decode(priv, h); err != nil || len(priv) != 32 {
		clear(priv)
		// Never quote the file: it holds a key.
		return nil, fmt.Errorf("--key-file %s: want a 32-byte private key in hex (64 characters), as `provider-services keys export NAME --unarmored-hex --unsafe` prints it", path)
	}
	return priv, nil
}

// printChallenge tells the user what to sign with the wallet.
func printChallenge(w io.Writer, c api.TenantChallenge) {
	quoted, _ := json.Marshal(c.Message)
	fmt.Fprintf(w, `Sign this message with the key of %s (it expires at %s):

%s

As a JSON string: %s

Keplr (browser console): await window.keplr.signArbitrary("akashnet-2", "%s", <the message>)
The exact ADR-036 document a wallet signs: %s

Paste the wallet's answer ({"pub_key":{...},"signature":"..."}) here:
`, c.Address, fmtTime(c.ExpiresAt), c.Message, quoted, c.Address, c.SignDoc)
}

// readWalletAnswer reads the first JSON object from in: signArbitrary's
// {"pub_key":{"type":...,"value":...},"signature":...}.
func readWalletAnswer(in io.Reader) (api.TenantPubKey, string, error) {
	var ans struct {
		PubKey    *api.TenantPubKey `json:"pub_key"`
		Signature string            `json:"signature"`
	}
	dec := json.NewDecoder(io.LimitReader(in, maxWalletAnswer))
	if err := dec.Decode(&ans); err != nil {
		if errors.Is(err, io.EOF) {
			return api.TenantPubKey{}, "", errors.New("no wallet answer on stdin: paste the JSON that signArbitrary returned")
		}
		return api.TenantPubKey{}, "", fmt.Errorf(`wallet answer on stdin: want the JSON signArbitrary returns, {"pub_key":{"type":"tendermint/PubKeySecp256k1","value":"..."},"signature":"..."}: %v`, err)
	}
	if ans.PubKey == nil || ans.PubKey.Value == "" || ans.Signature == "" {
		return api.TenantPubKey{}, "", errors.New("wallet answer on stdin: pub_key and signature are both required")
	}
	return *ans.PubKey, strings.TrimSpace(ans.Signature), nil
}

// saveToken writes tok to path, readable by its owner only (an existing
// file is replaced and its mode tightened).
func saveToken(path, tok string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("--save: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("--save %s: %w", path, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("--save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--save %s: %w", path, err)
	}
	return nil
}

func printTenantLogin(s *session, l api.TenantLogin, saved string) error {
	if saved != "" {
		l.Token = "" // in the file only
	}
	if s.json {
		return s.printJSON(l)
	}
	if saved == "" {
		fmt.Fprintln(s.out, l.Token)
	}
	what := "workspace %q"
	if l.Created {
		what = "new workspace %q"
	}
	fmt.Fprintf(s.err, "Logged in as %s, owner of "+what+"; API token %s expires at %s", l.User, l.Workspace, l.TokenID, fmtTime(l.ExpiresAt))
	if saved != "" {
		fmt.Fprintf(s.err, ", saved to %s (use --token-file %s)\n", saved, saved)
	} else {
		fmt.Fprintln(s.err, "; it is shown this once")
	}
	return nil
}
