package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/hub/api"
	"github.com/pullgate/pullgate/internal/testlog"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Public test keys (issue 15 research notes).
const (
	tenantKey   = "a267fb03b3e6dc381550ea0257ace31433698f16248ba111dfb75550364d31fe"
	tenantAddr  = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	otherKey    = "ef1450bdc18396f2254f52d8c525c0d933a8f146ec2a681eaf319f5899f2f60d"
	tenantHubAt = "https://hub.example"
)

func newTenantHub(t *testing.T) *hub {
	return newHubWith(t, func(d *api.Deps) { d.AkashTenants, d.PublicURL = true, tenantHubAt })
}

// runPublic runs the CLI with no token anywhere (no --token, no
// $PULLGATE_TOKEN, a token file that does not exist).
func (h *hub) runPublic(stdin io.Reader, stderr *testlog.Buffer, args ...string) (int, string, string) {
	h.t.Helper()
	h.t.Setenv(EnvToken, "")
	root := NewRoot()
	root.SetArgs(append([]string{"--hub", h.url, "--token-file", filepath.Join(h.t.TempDir(), "none")}, args...))
	root.SetIn(stdin)
	var stdout testlog.Buffer
	if stderr == nil {
		stderr = &testlog.Buffer{}
	}
	root.SetOut(&stdout)
	root.SetErr(stderr)
	code := Execute(context.Background(), root)
	h.mu.Lock()
	h.outputs = append(h.outputs, stdout.String(), stderr.String())
	h.mu.Unlock()
	return code, stdout.String(), stderr.String()
}

func writeKey(t *testing.T, key string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "akash.key")
	if err := os.WriteFile(p, []byte(key+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTenantLoginKeyFile(t *testing.T) {
	h := newTenantHub(t)
	key := writeKey(t, tenantKey, 0o600)
	code, out, errOut := h.runPublic(strings.NewReader(""), nil, "tenant", "login", "--address", tenantAddr, "--key-file", key, "--workspace", "acme")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, api.APITokenPrefix) || !strings.Contains(errOut, `owner of new workspace "acme"`) || !strings.Contains(errOut, "shown this once") {
		t.Fatalf("tenant login: %d %q %s", code, out, errOut)
	}
	code, out, _ = h.runAs(tok, "whoami")
	if code != 0 || !strings.Contains(out, tenantAddr) || !strings.Contains(out, "acme") || !strings.Contains(out, "owner") {
		t.Fatalf("whoami with the tenant token: %d %s", code, out)
	}

	// Again, saved to a file, as JSON: the same workspace, a new token
	// that is in the file only.
	saved := filepath.Join(t.TempDir(), "tenant.token")
	code, out, errOut = h.runPublic(strings.NewReader(""), nil, "tenant", "login", "--address", tenantAddr, "--key-file", key, "--save", saved, "-o", "json")
	var l api.TenantLogin
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.Created || l.Workspace != "acme" || l.Token != "" || errOut != "" {
		t.Fatalf("tenant login --save -o json: %d %s %s", code, out, errOut)
	}
	fi, err := os.Stat(saved)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved token file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(saved)
	tok2 := strings.TrimSpace(string(b))
	if !strings.HasPrefix(tok2, api.APITokenPrefix) || tok2 == tok {
		t.Fatalf("saved token %q", tok2)
	}
	root := NewRoot()
	root.SetArgs([]string{"--hub", h.url, "--token-file", saved, "workspace", "list"})
	var so testlog.Buffer
	root.SetOut(&so)
	root.SetErr(io.Discard)
	if code := Execute(context.Background(), root); code != 0 || !strings.Contains(so.String(), "acme") {
		t.Fatalf("--token-file of the saved token: %d %s", code, so.String())
	}
	// The private key is in no output and no log line.
	h.mu.Lock()
	outputs := strings.Join(h.outputs, "\n")
	h.mu.Unlock()
	if strings.Contains(outputs, tenantKey) || strings.Contains(h.logs.String(), tenantKey) {
		t.Fatal("the private key was printed or logged")
	}
	if strings.Contains(h.logs.String(), tok) || strings.Contains(h.logs.String(), tok2) {
		t.Fatal("a token was logged")
	}
}

func TestTenantLoginRefusals(t *testing.T) {
	h := newTenantHub(t)
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"key readable by others", []string{"--address", tenantAddr, "--key-file", writeKey(t, tenantKey, 0o644)}, 1, "chmod 600"},
		{"key readable by group", []string{"--address", tenantAddr, "--key-file", writeKey(t, tenantKey, 0o640)}, 1, "chmod 600"},
		{"key not hex", []string{"--address", tenantAddr, "--key-file", writeKey(t, "zz"+tenantKey[2:], 0o600)}, 1, "want a 32-byte private key in hex"},
		{"key too short", []string{"--address", tenantAddr, "--key-file", writeKey(t, tenantKey[:62], 0o600)}, 1, "want a 32-byte private key in hex"},
		{"key of another account", []string{"--address", tenantAddr, "--key-file", writeKey(t, otherKey, 0o600)}, 1, "not of " + tenantAddr},
		{"no key file", []string{"--address", tenantAddr, "--key-file", "/nonexistent/akash.key"}, 1, "no such file"},
		{"no address", []string{"--key-file", writeKey(t, tenantKey, 0o600)}, 2, "needs --address"},
		{"bad address", []string{"--address", "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud"}, 2, "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := h.runPublic(strings.NewReader(""), nil, append([]string{"tenant", "login"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.wantErr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %s; want %d naming %q", code, out, errOut, tc.code, tc.wantErr)
			}
			if strings.Contains(errOut, tenantKey[4:40]) || strings.Contains(errOut, otherKey[4:40]) {
				t.Fatalf("the key file's content is in the error: %s", errOut)
			}
		})
	}
	if _, err := h.st.GetUser(context.Background(), tenantAddr); err == nil {
		t.Fatal("a refused login created the user")
	}
	// A hub without --akash-tenants says so.
	off := newHub(t)
	code, _, errOut := off.runPublic(strings.NewReader(""), nil, "tenant", "login", "--address", tenantAddr, "--key-file", writeKey(t, tenantKey, 0o600))
	if code != 1 || !strings.Contains(errOut, "tenant self-service is off on this hub") {
		t.Fatalf("login on a hub without tenants: %d %s", code, errOut)
	}
}

// The wallet path: the CLI prints the message, the wallet signs it, the
// user pastes the wallet's JSON answer.
func TestTenantLoginWallet(t *testing.T) {
	h := newTenantHub(t)
	stdinR, stdinW := io.Pipe()
	var stderr testlog.Buffer
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := h.runPublic(stdinR, &stderr, "tenant", "login", "--address", tenantAddr)
		done <- result{code, out, errOut}
	}()
	var msg string
	waitFor(t, func() bool {
		_, after, ok := strings.Cut(stderr.String(), "As a JSON string: ")
		if !ok {
			return false
		}
		line, _, ok := strings.Cut(after, "\n")
		return ok && json.Unmarshal([]byte(line), &msg) == nil
	})
	if !strings.HasPrefix(msg, "pullgate login\nhub: "+tenantHubAt+"\naddress: "+tenantAddr+"\n") {
		t.Fatalf("message %q", msg)
	}
	if !strings.Contains(stderr.String(), string(akash.SignBytes(tenantAddr, []byte(msg)))) {
		t.Fatalf("the sign doc is not shown:\n%s", stderr.String())
	}
	kb, _ := hex.DecodeString(tenantKey)
	pub, sig, err := akash.Sign(kb, tenantAddr, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	// Keplr's answer, pretty-printed as a user would paste it.
	answer := "{\n  \"pub_key\": {\"type\": \"tendermint/PubKeySecp256k1\", \"value\": \"" + base64.StdEncoding.EncodeToString(pub) +
		"\"},\n  \"signature\": \"" + base64.StdEncoding.EncodeToString(sig) + "\"\n}\n"
	if _, err := io.WriteString(stdinW, answer); err != nil {
		t.Fatal(err)
	}
	stdinW.Close()
	r := <-done
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.out), api.APITokenPrefix) || !strings.Contains(r.err, `owner of new workspace "akash-m9l358xunh"`) {
		t.Fatalf("wallet login: %d %q %s", r.code, r.out, r.err)
	}

	// A garbled answer is refused clearly (and uses up the challenge).
	code, out, errOut := h.runPublic(strings.NewReader(`{"pub_key":"x"}`), nil, "tenant", "login", "--address", tenantAddr)
	if code != 1 || out != "" || !strings.Contains(errOut, "pub_key and signature are both required") {
		t.Fatalf("garbled answer: %d %q %s", code, out, errOut)
	}
	code, _, errOut = h.runPublic(strings.NewReader(`{"pub_key":"`+base64.StdEncoding.EncodeToString(pub)+`","signature":"`+base64.StdEncoding.EncodeToString(sig)+`"}`), nil, "tenant", "login", "--address", tenantAddr)
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "does not match") {
		t.Fatalf("an old signature on a new challenge: %d %s", code, errOut)
	}
}
