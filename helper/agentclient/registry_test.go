package agentclient

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/pkg/wire"
)

func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		image, registry string
		want            bool
	}{
		{"ghcr.io/org/app:1", "ghcr.io", true},
		{"GHCR.io/org/app", "ghcr.io", true},
		{"ghcr.io", "ghcr.io", true},
		{"hub.example.com/ghcr.io/org/app", "hub.example.com", true},
		{"registry.corp:5000/a@sha256:" + strings.Repeat("a", 64), "registry.corp:5000", true},
		{"localhost/a", "localhost", true},
		{"nginx", "docker.io", true},
		{"library/nginx:1", "docker.io", true},
		{"index.docker.io/library/nginx", "docker.io", true},
		{"ghcr.io/org/app", "hub.example.com", false},
		{"hub.example.com/ghcr.io/org/app", "ghcr.io", false},
		{"nginx", "nginx", false},
		{"ghcr.io/org/app", "docker.io", false},
		{"registry.corp:5000/a", "registry.corp", false},
	} {
		if got := Answers(tc.image, tc.registry); got != tc.want {
			t.Errorf("Answers(%q, %q) = %v, want %v", tc.image, tc.registry, got, tc.want)
		}
	}
}

// An answer keyed by another registry than the image names is refused:
// the runtime would send the token there.
func TestCredentialsForOtherRegistryRefused(t *testing.T) {
	body := `{"registry":"ghcr.io","username":"pullgate","password":"tok-SECRET","expires_at":"2099-01-01T00:00:00Z"}`
	raw := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	_, err := Credentials(context.Background(), serve(t, raw, 0), wire.CredentialsRequest{Image: "hub.example.com/ghcr.io/org/app"})
	if err == nil || !strings.Contains(err.Error(), `answer is for registry "ghcr.io"`) || strings.Contains(err.Error(), "tok-SECRET") {
		t.Fatalf("err = %v", err)
	}
	c, err := Credentials(context.Background(), serve(t, raw, 0), wire.CredentialsRequest{Image: "ghcr.io/org/app"})
	if err != nil || c.Password != "tok-SECRET" {
		t.Fatalf("matching answer: %v", err)
	}
}
