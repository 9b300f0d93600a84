package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/pullgate/pullgate/hub/store"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// httpError is an error with the status code and message the client sees.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// writeErr answers err. Store errors map to 404/409/400 with the store's
// own message (which names the object); anything unexpected is logged and
// answered with a generic 500 so that internals never reach the client.
func (s *server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	// Messages quote names from the request: never a pasted secret.
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, Error{Error: redactSecrets(he.msg)})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, Error{Error: redactSecrets(storeMessage(err, store.ErrNotFound))})
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, Error{Error: redactSecrets(storeMessage(err, store.ErrConflict))})
	case errors.Is(err, store.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, Error{Error: redactSecrets(storeMessage(err, store.ErrInvalid))})
	case store.IsUnavailable(err):
		// Not a 500 with a driver error: the client may retry, and
		// nothing was changed.
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "api: database unavailable",
			slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("error", redactSecrets(err.Error())))
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: "database unavailable: the hub cannot reach its database; nothing was changed, retry shortly"})
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "api internal error",
			slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("error", redactSecrets(err.Error())))
		writeJSON(w, http.StatusInternalServerError, Error{Error: "internal error; see the hub's log"})
	}
}

// storeMessage turns the store's `workspace "x": already exists` into
// `workspace "x" already exists`, and `invalid: install name ...` into
// `install name ...`.
func storeMessage(err, sentinel error) string {
	msg := err.Error()
	sm := sentinel.Error()
	if m, ok := strings.CutSuffix(msg, ": "+sm); ok {
		return m + " " + sm
	}
	if m, ok := strings.CutPrefix(msg, sm+": "); ok {
		return m
	}
	return strings.Replace(msg, ": "+sm+": ", ": ", 1)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON object from the request body into dst: at most
// MaxBodyBytes, no unknown fields, nothing after the object. An empty body
// is accepted only when optional is set (dst keeps its zero value). Error
// messages never quote the body.
func decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if errors.Is(err, io.EOF) {
		if optional {
			return nil
		}
		return badRequest("request body is empty: want a JSON object")
	}
	if err != nil {
		return jsonError(err, dst)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, dst)
		}
	}
	return badRequest("invalid JSON: unexpected data after the JSON object")
}

func jsonError(err error, dst any) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "request body too large: the limit is %d bytes (1 MiB)", mbe.Limit)
	case errors.As(err, &se):
		return badRequest("invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &ute):
		if ute.Field == "" {
			return badRequest("invalid JSON: want an object, got %s", ute.Value)
		}
		return badRequest("invalid JSON: field %q must be %s, got %s", ute.Field, jsonKind(ute.Type), ute.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON: unexpected end of input")
	}
	msg := err.Error()
	if m, ok := strings.CutPrefix(msg, "json: "); ok && strings.HasPrefix(m, "unknown field ") {
		return badRequest("invalid JSON: %s", m)
	}
	// Any other decoder error: name its kind without echoing input.
	return badRequest("invalid JSON for %s", reflect.TypeOf(dst).Elem().Name())
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}
