// Package agentclient asks the local pullgate agent for credentials over
// its unix socket (wire.CredentialsPath).
//
// The helper is exec'd for every image pull, so this is a deliberately
// small HTTP/1.1 client (one request, Connection: close, Content-Length or
// read-to-EOF body) instead of net/http: it keeps the helper's start-up
// cost down. It speaks only to the agent's own server.
package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/pullgate/pullgate/pkg/wire"
)

// Limits on what the agent may send back.
const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 1 << 20
)

// ErrNotFound matches (errors.Is) an agent answer of 404: no install on
// this cluster serves the image.
var ErrNotFound = errors.New("no install serves this image")

// Error is an error answer of the agent.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("pullgate agent: %s (HTTP %d)", e.Message, e.Status)
}

// Is makes errors.Is(err, ErrNotFound) true for 404 answers.
func (e *Error) Is(target error) bool { return target == ErrNotFound && e.Status == 404 }

// Credentials asks the agent listening on socket for credentials. ctx's
// deadline bounds the whole exchange.
func Credentials(ctx context.Context, socket string, req wire.CredentialsRequest) (wire.Credentials, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return wire.Credentials{}, fmt.Errorf("encode request: %w", err)
	}
	status, data, err := Do(ctx, socket, "POST", wire.CredentialsPath, body)
	if err != nil {
		return wire.Credentials{}, err
	}
	if status != 200 {
		var er wire.ErrorReply
		if json.Unmarshal(data, &er) != nil || er.Error == "" {
			er.Error = "unexpected answer"
		}
		return wire.Credentials{}, &Error{Status: status, Code: er.Code, Message: er.Error}
	}
	var c wire.Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		// Never quote the body: it holds a token.
		return wire.Credentials{}, errors.New("pullgate agent: malformed credentials answer")
	}
	if c.Password == "" {
		return wire.Credentials{}, errors.New("pullgate agent: answer without a token")
	}
	if c.Registry != "" && !Answers(req.Image, c.Registry) {
		return wire.Credentials{}, fmt.Errorf("pullgate agent: answer is for registry %q, not %q that the image names; refusing", c.Registry, RegistryOf(req.Image))
	}
	return c, nil
}

// Do sends one HTTP/1.1 request over the unix socket and returns the
// status and body.
func Do(ctx context.Context, socket, method, path string, body []byte) (int, []byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach the pullgate agent at %s (is pullgate-agent running?): %w", socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var req bytes.Buffer
	req.Grow(256 + len(body))
	req.WriteString(method + " " + path + " HTTP/1.1\r\nHost: pullgate-agent\r\nUser-Agent: pullgate-credential-provider\r\n")
	if body != nil {
		req.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	req.WriteString("Connection: close\r\n\r\n")
	req.Write(body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return 0, nil, fmt.Errorf("pullgate agent at %s: send request: %w", socket, ctxErr(ctx, err))
	}
	status, data, err := readResponse(bufio.NewReaderSize(conn, 4096))
	if err != nil {
		return 0, nil, fmt.Errorf("pullgate agent at %s: %w", socket, ctxErr(ctx, err))
	}
	return status, data, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func readResponse(r *bufio.Reader) (int, []byte, error) {
	hdr := 0
	line := func() (string, error) {
		l, err := r.ReadString('\n')
		hdr += len(l)
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
		if hdr > maxHeaderBytes {
			return "", errors.New("answer header too large")
		}
		return strings.TrimRight(l, "\r\n"), nil
	}
	sl, err := line()
	if err != nil {
		return 0, nil, err
	}
	proto, rest, ok := strings.Cut(sl, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(rest) < 3 {
		return 0, nil, errors.New("malformed answer status line")
	}
	status, err := strconv.Atoi(rest[:3])
	if err != nil || status < 100 || status > 599 {
		return 0, nil, errors.New("malformed answer status")
	}
	length := -1
	for {
		l, err := line()
		if err != nil {
			return 0, nil, err
		}
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, nil, errors.New("malformed answer Content-Length")
			}
			length = n
		case "transfer-encoding":
			if !strings.EqualFold(v, "identity") {
				return 0, nil, fmt.Errorf("unsupported answer Transfer-Encoding %q", v)
			}
		}
	}
	if length > maxBodyBytes {
		return 0, nil, errors.New("answer body too large")
	}
	if length >= 0 {
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, nil, fmt.Errorf("read answer body: %w", err)
		}
		return status, body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return 0, nil, errors.New("answer body too large")
	}
	return status, body, nil
}
