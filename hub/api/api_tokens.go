package api

import (
	"errors"
	"net/http"
	"time"

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
	ttl, err := parseTokenTTL(req.ExpiresIn)
	if err != nil {
		return err
	}
	t := store.APIToken{Description: req.Description}
	if ttl > 0 {
		t.ExpiresAt = s.now().Add(ttl)
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
