package agentclient

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadResponse: the hand-rolled HTTP/1.1 reader of the agent's answer.
// Properties: a status in 100-599, a body within the limit and exactly
// Content-Length long when one was given; errors are short and never
// quote the body (it holds the token).
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"password\":\"tok-1\"}",
		"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"x\"}",
		"HTTP/1.0 503 x\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 2000\r\n\r\n", "garbage", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		status, body, err := readResponse(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			if _, b, ok := bytes.Cut(raw, []byte("\r\n\r\n")); ok && len(b) >= 8 && strings.Contains(err.Error(), string(b)) {
				t.Fatal("error quotes the body")
			}
			return
		}
		if status < 100 || status > 599 || len(body) > maxBodyBytes {
			t.Fatalf("status %d, body %d bytes", status, len(body))
		}
		if n, ok := contentLength(raw); ok && n != len(body) {
			t.Fatalf("Content-Length %d, body %d bytes", n, len(body))
		}
	})
}

// contentLength is the one valid Content-Length header of raw's header
// section, if there is exactly one.
func contentLength(raw []byte) (int, bool) {
	n, found := 0, 0
	for i, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimRight(l, "\r")
		if i > 0 && l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		if i > 0 && strings.EqualFold(strings.TrimSpace(k), "content-length") {
			found++
			var err error
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return 0, false
			}
		}
	}
	return n, found == 1
}
