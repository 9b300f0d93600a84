package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pullgate/pullgate/hub/store"
)

// Console sessions: a user (or the admin) signs in once with a token and
// the console carries an HttpOnly cookie instead of the token. The cookie
// value is 256 random bits; the store keeps its SHA-256 only, so hub
// replicas on one database share sessions and a database dump opens none.
// Every state change made with the cookie needs X-CSRF-Token, which is an
// HMAC of the cookie value: bound to the session, readable only by the page
// that signed in (from the sign-in answer), never by a cross-site page.

// SessionCookie is the console session cookie's name over plain HTTP;
// SessionCookieSecure its name when the cookie is Secure. The __Host-
// prefix makes browsers refuse the cookie from a sibling subdomain (cookie
// tossing: a page on evil.example.com planting its own session for
// hub.example.com, so that the victim types a registry secret into the
// attacker's workspace) and without Secure, Path=/ and no Domain.
const (
	SessionCookie       = "pullgate_session"
	SessionCookieSecure = "__Host-" + SessionCookie
)

// CSRFHeader carries the session's CSRF token.
const CSRFHeader = "X-CSRF-Token"

// Session lifetimes (defaults of Deps.SessionTTL and Deps.SessionIdle).
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultSessionIdle = time.Hour
)

const sessionPrefix = "pgs_"

// csrfFor derives the CSRF token of a session from its cookie value.
func csrfFor(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("pullgate csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// adminFP fingerprints the admin token for admin sessions: a new admin
// token ends them.
func adminFP(adminToken string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("pullgate admin session v1"))
	return m.Sum(nil)
}

// sessionPrincipal resolves a session cookie value.
func (s *server) sessionPrincipal(ctx context.Context, cookie string) (*Principal, error) {
	if !strings.HasPrefix(cookie, sessionPrefix) || len(cookie) > 128 {
		return nil, errUnauthenticated
	}
	se, err := s.d.Store.SessionByHash(ctx, hashSecret(cookie))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(se.ExpiresAt) || !now.Before(se.LastSeenAt.Add(s.sessionIdle)) {
		_ = s.d.Store.DeleteSession(ctx, se.ID)
		return nil, errUnauthenticated
	}
	var p *Principal
	switch se.Kind {
	case store.SessionAdmin:
		if !s.tokens.hasAdmin || subtle.ConstantTimeCompare(se.AdminFP, s.adminFP) != 1 {
			return nil, errUnauthenticated
		}
		p = &Principal{Kind: PrincipalAdmin, Name: "admin"}
	case store.SessionUser:
		at, err := s.d.Store.GetAPIToken(ctx, se.TokenID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		// The session lives no longer than the token it was opened with.
		if p, err = s.tokens.userPrincipal(ctx, at); err != nil {
			return nil, err
		}
	default:
		return nil, errUnauthenticated
	}
	// The idle clock has minute resolution: most requests (the console
	// polls every 2 s) write nothing.
	if now.Sub(se.LastSeenAt) >= time.Minute {
		if err := s.d.Store.TouchSession(ctx, se.ID, now); err != nil {
			return nil, err
		}
	}
	p.session, p.csrf = &se, csrfFor(cookie)
	return p, nil
}

// safeMethod: methods that change nothing and need no CSRF token.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// checkSameOrigin refuses a request a browser sent from another site:
// Sec-Fetch-Site other than same-origin (or none: typed by the user), or
// an Origin whose host is not the request's.
func checkSameOrigin(r *http.Request) error {
	switch v := r.Header.Get("Sec-Fetch-Site"); v {
	case "", "same-origin", "none":
	default:
		return errorf(http.StatusForbidden, "forbidden: cross-site request (Sec-Fetch-Site: %s)", shorten(v, 16))
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, "forbidden: cross-site request (Origin is not this hub)")
		}
	}
	return nil
}

// checkCSRF guards a state change authenticated by the session cookie.
func checkCSRF(r *http.Request, p *Principal) error {
	if p.session == nil || safeMethod(r.Method) {
		return nil
	}
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
		return errorf(http.StatusForbidden, "forbidden: a state change with the session cookie needs the header %s (csrf_token of the session)", CSRFHeader)
	}
	return nil
}

// secureCookie: over TLS, or behind a proxy when the public URL is https.
func (s *server) secureCookie(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.d.PublicURL, "https://")
}

// sessionCookieName is the session cookie's name for r: the __Host- one
// whenever the cookie is Secure.
func (s *server) sessionCookieName(r *http.Request) string {
	if s.secureCookie(r) {
		return SessionCookieSecure
	}
	return SessionCookie
}

// sessionCookie returns the request's session cookie value. Two of them
// (one planted by another site of the domain, over plain HTTP) answer as
// none: never a guess at which is the user's.
func (s *server) sessionCookie(r *http.Request) (string, bool) {
	name, value, n := s.sessionCookieName(r), "", 0
	for _, c := range r.Cookies() {
		if c.Name == name {
			value, n = c.Value, n+1
		}
	}
	return value, n == 1 && value != ""
}

func (s *server) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(r), Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r), MaxAge: maxAge})
}

// createSession signs in with a token (POST /api/v1/session).
func (s *server) createSession(w http.ResponseWriter, r *http.Request) error {
	// Login CSRF: a cross-site page must not sign the browser in as
	// someone else.
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	var req CreateSessionRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	p, err := s.tokens.Resolve(r.Context(), string(req.Token))
	if errors.Is(err, errUnauthenticated) {
		return errorf(http.StatusUnauthorized, "unauthorized: the token is not a valid admin or API token (unknown, expired or revoked)")
	}
	if err != nil {
		return err
	}
	now := s.now()
	se := store.Session{Kind: store.SessionAdmin, CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL), LastSeenAt: now}
	if p.IsAdmin() {
		se.AdminFP = s.adminFP
	} else {
		se.Kind, se.UserID, se.TokenID = store.SessionUser, p.UserID, p.TokenID
	}
	cookie := newSecret(sessionPrefix)
	if se, err = s.d.Store.CreateSession(r.Context(), se, hashSecret(cookie)); err != nil {
		return err
	}
	p.session, p.csrf = &se, csrfFor(cookie)
	// The sign-in is the principal's own action: record it as such.
	setPrincipal(r, p)
	setTarget(r, "session", se.ID)
	s.setSessionCookie(w, r, cookie, int(s.sessionTTL/time.Second))
	writeJSON(w, http.StatusOK, SessionView{Principal: p.view(), CSRFToken: p.csrf, ExpiresAt: se.ExpiresAt.UTC()})
	return nil
}

// getSession answers the current session (GET /api/v1/session).
func (s *server) getSession(w http.ResponseWriter, r *http.Request) error {
	p, err := s.cookiePrincipal(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SessionView{Principal: p.view(), CSRFToken: p.csrf, ExpiresAt: p.session.ExpiresAt.UTC()})
	return nil
}

// deleteSession signs out (DELETE /api/v1/session): the session is
// deleted and the cookie cleared.
func (s *server) deleteSession(w http.ResponseWriter, r *http.Request) error {
	p, err := s.cookiePrincipal(r)
	if err != nil {
		s.setSessionCookie(w, r, "", -1)
		return err
	}
	if err := checkCSRF(r, p); err != nil {
		return err
	}
	setPrincipal(r, p)
	setTarget(r, "session", p.session.ID)
	if err := s.d.Store.DeleteSession(r.Context(), p.session.ID); err != nil {
		return err
	}
	s.setSessionCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) cookiePrincipal(r *http.Request) (*Principal, error) {
	value, ok := s.sessionCookie(r)
	if !ok {
		return nil, errorf(http.StatusUnauthorized, "unauthorized: no console session (sign in with POST /api/v1/session)")
	}
	p, err := s.sessionPrincipal(r.Context(), value)
	if errors.Is(err, errUnauthenticated) {
		return nil, errorf(http.StatusUnauthorized, "unauthorized: the console session ended (expired, signed out, or its token was revoked)")
	}
	return p, err
}
