package proxy

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client trickling a token form is cut off instead of holding a
// connection and a goroutine for as long as it likes.
func TestSlowTokenFormDropped(t *testing.T) {
	f := newFixture(t, func(p *Proxy) { p.formTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise 100 bytes; only 10 come.
	if _, err := conn.Write([]byte("POST /auth/token HTTP/1.1\r\nHost: hub\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // generous bound
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled form: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stalled form: %d, want 400", resp.StatusCode)
	}
}
