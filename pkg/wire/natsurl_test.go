package wire

import (
	"strings"
	"testing"
)

func TestCheckNATSURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		insecure bool
		wantErr  string
	}{
		{"tls://hub.example.com:4222", false, ""},
		{"tls://10.0.0.5:4222", false, ""},
		{"nats://127.0.0.1:4222", false, ""},
		{"nats://[::1]:4222", false, ""},
		{"nats://localhost:4222", false, ""},
		{"127.0.0.1:4222", false, ""},
		{"nats://hub.example.com:4222", false, "plain text"},
		{"hub.example.com:4222", false, "plain text"},
		{"nats://10.0.0.5:4222", false, "--insecure-nats"},
		{"nats://0.0.0.0:4222", false, "plain text"},
		{"nats://localhost.evil.com:4222", false, "plain text"},
		{"nats://user:secretpw@hub.example.com:4222", false, "REDACTED"},
		{"nats://hub.example.com:4222", true, ""},
		{"tls://a:4222, nats://b:4222", false, "nats://b:4222"},
		{"ws://hub.example.com:4222", true, "scheme"},
		{"http://hub.example.com:5080", true, "is not a NATS URL"},
		{"https://hub.example.com", false, "not at the hub's HTTP address"},
		{"tls://a:4222,http://user:secretpw@b:5080", false, "tls://HOST:PORT or nats://HOST:PORT"},
		{"", false, "empty"},
		{"nats://", false, "want tls://"},
	} {
		err := CheckNATSURL(c.url, c.insecure)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("CheckNATSURL(%q, %v): %v", c.url, c.insecure, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("CheckNATSURL(%q, %v): %v, want an error naming %q", c.url, c.insecure, err, c.wantErr)
		case err != nil && strings.Contains(err.Error(), "secretpw"):
			t.Errorf("CheckNATSURL(%q): password in the error", c.url)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://hub:4222":             "nats://hub:4222",
		"nats://user:secret@hub:4222": "nats://REDACTED@hub:4222",
		"tls://tok@hub":               "tls://REDACTED@hub",
		"user:secret@hub:4222":        "REDACTED@hub:4222",
		"secret@hub":                  "REDACTED@hub",
		"hub:4222":                    "hub:4222",
		"tls://a:secret@h1, nats://b:secret@h2:4222": "tls://REDACTED@h1,nats://REDACTED@h2:4222",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q", in, got)
		}
	}
}
