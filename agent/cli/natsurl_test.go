package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The agent refuses to send its join token, node secret and tokens in
// clear text to another host unless told to, and says how to fix it.
func TestRunRefusesPlainTextNATSOffLoopback(t *testing.T) {
	badCA := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(badCA, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"run", "--nats-url", "nats://hub.example.com:4222", "--join-token", "pgj1.x.y"}, nil,
			[]string{"plain text", "tls://hub.example.com:4222", "--insecure-nats", "--nats-ca"}},
		{[]string{"run", "--join-token", "pgj1.x.y"}, map[string]string{EnvNATSURL: "nats://10.0.0.5:4222"},
			[]string{"plain text", "--insecure-nats"}},
		{[]string{"run", "--nats-url", "nats://127.0.0.1:4222,nats://hub.example.com:4222"}, nil, []string{"hub.example.com"}},
		{[]string{"run", "--nats-url", "http://hub.example.com:5080"}, nil, []string{"is not a NATS URL", "--nats-listen", "4222"}},
		{[]string{"run", "--nats-url", "tls://hub.example.com:4222", "--nats-ca", badCA}, nil, []string{"no PEM certificate"}},
		{[]string{"run", "--nats-url", "tls://hub.example.com:4222", "--nats-ca", badCA + ".missing"}, nil, []string{"NATS CA"}},
	} {
		// Should the check regress, the agent must not touch the machine's paths.
		tmp := t.TempDir()
		args := append(tc.args, "--state-dir", filepath.Join(tmp, "state"), "--socket", filepath.Join(tmp, "a.sock"), "--metrics-listen", "")
		code, out, errs := run(t, tc.env, args...)
		for _, w := range tc.want {
			if code != ExitUsage || !strings.Contains(out+errs, w) {
				t.Errorf("%v %v: exit %d, output %q; want %d naming %q", tc.args, tc.env, code, out+errs, ExitUsage, w)
			}
		}
		if strings.Contains(out+errs, "pgj1.x.y") {
			t.Errorf("%v: the join token is in the output", tc.args)
		}
	}
}
