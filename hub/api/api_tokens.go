package api

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pullgate/pullgate/hub/store"
)

// Users' API tokens: a user creates, lists and revokes its own; the admin
// creates a user's first token (bootstrap) and sees and revokes any. The
// admin itself has no API tokens: it has the admin token.

// parseTokenTTL reads expires_in: empty is DefaultAPITokenTTL, "0" never.
func parseTokenTTL(v string) (time.Duration, error) {
	switch v {
	case "":
		return DefaultAPITokenTTL, nil
	case "0":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		return 0, badRequest("expires_in %q: want a duration of at least 1m (720h for 30 days), or 0 for a token that never expires", v)
	}
	return d, nil
}

func (s *server) createAPIToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateAPITokenRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	p := principalFrom(r.Context())
	user := req.User
	switch {
	case p.IsAdmin() && user == "":
		return badRequest("user: the hub admin has the admin token; name the user this token is for")
	case !p.IsAdmin() && user == "":
		user = p.Name
	case !p.IsAdmin() && user != p.Name:
		return errorf(http.StatusForbidden, "forbidden: a user creates tokens for itself only; the hub admin creates a user's first token")
	}
	if len(req.Description) > store.MaxTokenDescription {
		return badRequest("description: at most %d bytes", store.MaxTokenDescription)
	}
	// The admin's `token list` prints every user's descriptions to a
	// terminal: no escape sequences, no line breaks, no bidi overrides or
	// invisible characters (format characters) that make text read as
	// something else.
	if !utf8.ValidString(req.Description) || strings.ContainsFunc(req.Description, unsafeRune) {
		return badRequest("description: control and format characters (escape sequences, line breaks, bidi overrides) are not allowed")
	}
	ttl, err := parseTokenTTL(req.ExpiresIn)
	if err != nil {
		return err
	}
	t := store.APIToken{Description: req.Description}
	if ttl > 0 {
		t.ExpiresAt = s.now().Add(ttl)
	}
	if t.ExpiresAt, err = boundByParent(p, req.ExpiresIn, t.ExpiresAt); err != nil {
		return err
	}
	if err := s.checkTokenCount(r, user); err != nil {
		return err
	}
	secret := newSecret(APITokenPrefix)
	t, err = s.d.Store.CreateAPIToken(r.Context(), user, t, hashSecret(secret))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "user %q not found: add it to a workspace first (member add)", user)
	}
	if err != nil {
		return err
	}
	setTarget(r, "api_token", t.ID)
	writeJSON(w, http.StatusCreated, NewAPIToken{APIToken: apiTokenView(t, s.now()), Token: secret})
	return nil
}

// MaxActiveAPITokens bounds a user's usable (neither revoked nor expired)
// API tokens: a member must not fill the hub's database, which all
// tenants share, by minting tokens in a loop.
const MaxActiveAPITokens = 100

func (s *server) checkTokenCount(r *http.Request, user string) error {
	u, err := s.d.Store.GetUser(r.Context(), user)
	if errors.Is(err, store.ErrNotFound) {
		return nil // CreateAPIToken answers it
	}
	if err != nil {
		return err
	}
	ts, err := s.d.Store.ListAPITokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	n, now := 0, s.now()
	for _, t := range ts {
		if t.Usable(now) {
			n++
		}
	}
	if n >= MaxActiveAPITokens {
		return errorf(http.StatusConflict, "user %q has %d active API tokens, the most allowed: revoke unused ones first (token list, token revoke)", user, n)
	}
	return nil
}

// boundByParent keeps a user's new token from outliving the token it is
// created with (directly or through a console session): otherwise a stolen
// token that expires in an hour, or a stolen session cookie, mints itself a
// token that never expires and outlives the stolen one's revocation. The
// default lifetime is cut to the parent's; an explicit longer one is
// refused. The admin is not bound.
func boundByParent(p *Principal, expiresIn string, exp time.Time) (time.Time, error) {
	limit := p.tokenExpires
	if p.IsAdmin() || limit.IsZero() || (!exp.IsZero() && !exp.After(limit)) {
		return exp, nil
	}
	if expiresIn == "" {
		return limit, nil
	}
	return time.Time{}, badRequest("expires_in %q: this request is made with a token that expires at %s, and a token it creates cannot outlive it (the hub admin can create a longer-lived one)",
		expiresIn, limit.UTC().Format(time.RFC3339))
}

func (s *server) listAPITokens(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	userID := p.UserID
	if p.IsAdmin() {
		userID = ""
		if name := r.URL.Query().Get("user"); name != "" {
			u, err := s.d.Store.GetUser(r.Context(), name)
			if err != nil {
				return err
			}
			userID = u.ID
		}
	}
	ts, err := s.d.Store.ListAPITokens(r.Context(), userID)
	if err != nil {
		return err
	}
	out := APITokenList{Tokens: make([]APIToken, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, apiTokenView(t, s.now()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) revokeAPIToken(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	owner := p.UserID
	if p.IsAdmin() {
		owner = ""
	}
	// The token itself instead of its id: refuse without echoing it.
	if id := r.PathValue("id"); redactSecrets(id) != id {
		return badRequest("give the token's id (tok_..., from token list), not the token itself")
	}
	t, err := s.d.Store.RevokeAPIToken(r.Context(), r.PathValue("id"), owner)
	if errors.Is(err, store.ErrNotFound) && owner != "" {
		// Another user's token answers as no token; the activity log
		// records the attempt as refused.
		if other, gerr := s.d.Store.GetAPIToken(r.Context(), r.PathValue("id")); gerr == nil && other.UserID != owner {
			infoFrom(r.Context()).refused = true
		}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiTokenView(t, s.now()))
	return nil
}
