package api

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// req is one API request with any credentials a test gives it.
type req struct {
	method, path, body string
	bearer             string // Authorization: Bearer <bearer> when set
	cookie             string // pullgate_session=<cookie> when set
	csrf               string // X-CSRF-Token when set
	header             map[string]string
	tls                bool
}

// send serves r and returns the recorder; the body is kept for the leak
// checks.
func (e *testEnv) send(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if r.body != "" {
		rd = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, rd)
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: SessionCookie, Value: r.cookie})
	}
	if r.csrf != "" {
		hr.Header.Set(CSRFHeader, r.csrf)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.tls {
		hr.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	e.mu.Lock()
	e.bodies = append(e.bodies, rec.Body.String())
	e.mu.Unlock()
	return rec
}

// addMember makes user a member of ws with role (as the admin).
func (e *testEnv) addMember(ws, user, role string) {
	e.t.Helper()
	e.must("POST", "/api/v1/workspaces/"+ws+"/members", `{"user":"`+user+`","role":"`+role+`"}`, 201, nil)
}

// userToken creates an API token for user (as the admin) and returns it
// with its id.
func (e *testEnv) userToken(user, expiresIn string) (string, string) {
	e.t.Helper()
	var t NewAPIToken
	body := `{"user":"` + user + `"`
	if expiresIn != "" {
		body += `,"expires_in":"` + expiresIn + `"`
	}
	e.must("POST", "/api/v1/tokens", body+`}`, 201, &t)
	return t.Token, t.ID
}

// login opens a console session with tok and returns the cookie value
// and the CSRF token.
func (e *testEnv) login(tok string) (string, string) {
	e.t.Helper()
	rec := e.send(req{method: "POST", path: "/api/v1/session", body: `{"token":"` + tok + `"}`})
	if rec.Code != 200 {
		e.t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var sv SessionView
	if err := json.Unmarshal(rec.Body.Bytes(), &sv); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			return c.Value, sv.CSRFToken
		}
	}
	e.t.Fatalf("login set no %s cookie: %v", SessionCookie, rec.Header())
	return "", ""
}

// assertShownOnce checks that secret was in exactly one response (the one
// that created it) and in no log line and no byte of the database.
func (e *testEnv) assertShownOnce(secret string) {
	e.t.Helper()
	e.mu.Lock()
	n := 0
	for _, b := range e.bodies {
		if strings.Contains(b, secret) {
			n++
		}
	}
	saved := e.bodies
	e.bodies = []string{"-"}
	e.mu.Unlock()
	if n != 1 {
		e.t.Errorf("secret in %d responses, want exactly 1 (its creation)", n)
	}
	e.assertNoLeak(secret)
	e.mu.Lock()
	e.bodies = saved
	e.mu.Unlock()
}
