package server

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/natsauth"
)

// A NATS listen address already in use is reported at once, naming the
// address and the flag, not after a 15 s "not ready".
func TestNATSListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	creds, err := natsauth.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ns, err := startNATS(l.Addr().String(), nil, creds)
	if err == nil {
		ns.Shutdown()
		t.Fatal("startNATS on a port in use succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v to report the port in use", took)
	}
	for _, want := range []string{"listen on " + l.Addr().String(), "address is in use", "--nats-listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
