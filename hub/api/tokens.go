package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/pullgate/pullgate/hub/token"
)

// Token TTL bounds.
const (
	DefaultTokenTTL = 10 * time.Minute
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 24 * time.Hour
)

// parseTTL reads a token lifetime; empty means DefaultTokenTTL.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTokenTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest("ttl %q: not a duration (e.g. 10m, 1h)", s)
	}
	if d < MinTokenTTL || d > MaxTokenTTL {
		return 0, badRequest("ttl %q: must be between %v and %v", s, MinTokenTTL, MaxTokenTTL)
	}
	return d, nil
}

func (s *server) mintToken(w http.ResponseWriter, r *http.Request) error {
	var req MintTokenRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return err
	}
	if s.d.Keyring == nil {
		return errorf(http.StatusNotImplemented, "install tokens are not available on this hub")
	}
	wsName := r.PathValue("ws")
	in, err := s.d.Store.GetInstall(r.Context(), wsName, r.PathValue("name"))
	if err != nil {
		return err
	}
	if !in.Enabled {
		return errorf(http.StatusConflict, "install %q in workspace %q is disabled: enable it before minting tokens", in.Name, wsName)
	}
	tok, claims, err := s.d.Keyring.Mint(token.Claims{
		Install:    in.ID,
		Workspace:  in.WorkspaceID,
		Cluster:    in.Cluster,
		Repos:      in.Repos,
		Generation: in.Generation,
	}, ttl)
	if err != nil {
		return err
	}
	if s.d.OnTokenMinted != nil {
		s.d.OnTokenMinted()
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "install token minted",
		slog.String("workspace", wsName), slog.String("install", in.Name),
		slog.Int64("generation", in.Generation), slog.String("jti", claims.ID),
		slog.Time("expires_at", claims.ExpiresAt()))
	writeJSON(w, http.StatusCreated, Token{
		Token:     tok,
		ExpiresAt: claims.ExpiresAt().UTC(),
		Install:   in.Name,
		Workspace: wsName,
	})
	return nil
}
