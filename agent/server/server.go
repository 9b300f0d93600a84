// Package server is the node agent's unix-socket API for the credential
// helper (wire.CredentialsPath, wire.HealthPath): HTTP over a socket that
// only root can open (mode 0600).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/agent/metrics"
	"github.com/pullgate/pullgate/pkg/wire"
)

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// ErrNotReady is returned by a Backend that cannot serve yet (not
// enrolled, not connected once).
var ErrNotReady = errors.New("the agent is not ready (not enrolled with the hub yet)")

// ErrNotRouted is returned (wrapped) by a Backend for an image named by
// an upstream host that the node does not route to the hub: answered
// like "no install serves it" (404), so the helper hands out nothing.
var ErrNotRouted = errors.New("image not routed through the hub")

// Backend answers credential requests.
type Backend interface {
	Credentials(ctx context.Context, req wire.CredentialsRequest) (wire.Credentials, error)
	// Ready reports whether the agent serves, and why not.
	Ready() (bool, string)
}

// Handler serves the socket API.
func Handler(b Backend, log *slog.Logger, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.CredentialsPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, m, http.StatusMethodNotAllowed, wire.CodeInvalid, "use POST")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				writeError(w, m, http.StatusUnsupportedMediaType, wire.CodeInvalid, "Content-Type must be application/json")
				return
			}
		}
		req, err := decode(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			status := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
				err = fmt.Errorf("request body larger than %d bytes", MaxBody)
			}
			writeError(w, m, status, wire.CodeInvalid, err.Error())
			return
		}
		creds, err := b.Credentials(r.Context(), req)
		if err != nil {
			status, code := StatusOf(err)
			if status >= 500 {
				log.Warn("credential request failed", "err", err, "status", status)
			} else {
				log.Info("credential request refused", "err", err, "status", status)
			}
			writeError(w, m, status, code, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, creds)
	})
	mux.HandleFunc(wire.HealthPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, m, http.StatusMethodNotAllowed, wire.CodeInvalid, "use GET")
			return
		}
		ready, why := b.Ready()
		if !ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return mux
}

// decode reads one strict JSON CredentialsRequest.
func decode(r io.Reader) (wire.CredentialsRequest, error) {
	var req wire.CredentialsRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New("empty request body: want a JSON credentials request")
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, err
		}
		return req, fmt.Errorf("malformed JSON credentials request: %s", clip(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, err
		}
		return req, errors.New("malformed JSON credentials request: data after the object")
	}
	if req.Image == "" {
		return req, errors.New("image is required")
	}
	return req, nil
}

// clip bounds an error text that quotes the request (an unknown field's
// name can be as long as the body): it goes back to the helper and into
// the log.
func clip(s string) string {
	const n = 160
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// StatusOf maps an error of Backend.Credentials to an HTTP status and a
// wire error code.
func StatusOf(err error) (int, string) {
	var re *hubclient.ReplyError
	switch {
	case errors.As(err, &re):
		switch re.Code {
		case wire.CodeNotFound:
			return http.StatusNotFound, re.Code
		case wire.CodeInvalid:
			return http.StatusBadRequest, re.Code
		case wire.CodeForbidden, wire.CodeAmbiguous:
			return http.StatusForbidden, re.Code
		default:
			return http.StatusBadGateway, wire.CodeInternal
		}
	case errors.Is(err, ErrNotRouted):
		return http.StatusNotFound, wire.CodeNotFound
	case errors.Is(err, cache.ErrInvalid):
		return http.StatusBadRequest, wire.CodeInvalid
	case errors.Is(err, cache.ErrRefused):
		return http.StatusServiceUnavailable, wire.CodeForbidden
	default: // unreachable, resync pending, not ready, cancelled
		return http.StatusServiceUnavailable, wire.CodeInternal
	}
}

func writeError(w http.ResponseWriter, m *metrics.Metrics, status int, code, msg string) {
	if m != nil {
		m.RequestErrors.WithLabelValues(strconv.Itoa(status)).Inc()
	}
	writeJSON(w, status, wire.ErrorReply{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"encode reply","code":"internal"}`)
	}
	data = append(data, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// ListenUnix listens on a unix socket at path with mode 0600: the socket
// is bound under a temporary name, restricted, then renamed into place, so
// it is never reachable with looser permissions. The parent directory is
// created (0755). A stale socket left by a dead agent is removed; a live
// one (something answers) is an error. Closing the listener removes path.
func ListenUnix(path string, log *slog.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("socket path %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another agent is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
		log.Info("removed stale socket", "path", path)
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	_ = os.Remove(tmp)
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on socket: %w", err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("socket permissions: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("socket: %w", err)
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	_ = os.Remove(l.path)
	return err
}
