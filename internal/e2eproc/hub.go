package e2eproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// Hub is a running `pullgate-hub serve` with its embedded defaults
// (SQLite, embedded NATS, local cache).
type Hub struct {
	*Proc
	Addr string // host:port of the HTTP listener
	NATS string // NATS client URL
	Data string // data directory
}

// StartHub runs the hub binary with its data in dir/pullgate-data and
// waits until it is ready.
func StartHub(t testing.TB, dir string) *Hub {
	t.Helper()
	return StartHubWith(t, dir, nil)
}

// StartHubWith is StartHub with more `serve` flags, which extra makes
// from the hub's HTTP address (for --public-url); extra may be nil.
func StartHubWith(t testing.TB, dir string, extra func(addr string) []string) *Hub {
	t.Helper()
	natsPort := testupstream.FreePort(t)
	h := &Hub{Addr: fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)), NATS: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		Data: filepath.Join(dir, "pullgate-data")}
	args := []string{"serve", "--listen", h.Addr,
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", testupstream.FreePort(t)),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort)}
	if extra != nil {
		args = append(args, extra(h.Addr)...)
	}
	h.Proc = Start(t, "hub", dir, nil, HubBinary(t), args...)
	WaitHTTP(t, "http://"+h.Addr+"/readyz", h.Proc)
	return h
}

// AdminToken reads the hub's admin token from its data directory.
func (h *Hub) AdminToken(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
