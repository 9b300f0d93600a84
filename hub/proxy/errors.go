package proxy

import (
	"encoding/json"
	"net/http"
)

// apiError is an OCI distribution error response.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter string
	challenge  bool // add WWW-Authenticate
	reason     string
	// refusal, when set, marks a refused pull and says why in the audit
	// trail (a fixed identifier such as "install_disabled").
	refusal string
}

// because marks e as a refusal with the audit reason r.
func (e *apiError) because(r string) *apiError {
	e.refusal = r
	return e
}

func errCode(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, message: msg}
}

func errNameInvalid(msg string) *apiError {
	return errCode(http.StatusBadRequest, "NAME_INVALID", msg)
}

func errNameUnknown(msg string) *apiError {
	return errCode(http.StatusNotFound, "NAME_UNKNOWN", msg)
}

func errNotFound(msg string) *apiError {
	return errCode(http.StatusNotFound, "NOT_FOUND", msg)
}

func errDenied(msg string) *apiError {
	return errCode(http.StatusForbidden, "DENIED", msg)
}

// errUnauthorized asks the client to authenticate; reason is the metrics
// label of why a token was refused ("" when none was sent).
func errUnauthorized(reason, msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "UNAUTHORIZED", message: msg, challenge: true, reason: reason}
}

func errUpstream(msg string) *apiError {
	return errCode(http.StatusBadGateway, "UNAVAILABLE", msg)
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(errorBody{Errors: []errorEntry{{Code: e.code, Message: e.message}}})
}

// truncate shortens client-supplied text echoed in an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
