package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session kinds.
const (
	SessionAdmin = "admin"
	SessionUser  = "user"
)

// Session is a console session. Its cookie value is never stored, only
// its SHA-256; several hub replicas on one database share sessions.
type Session struct {
	ID   string
	Kind string // SessionAdmin or SessionUser
	// UserID and TokenID: the user and the API token a user session was
	// opened with (it ends when the token is revoked or deleted).
	UserID  string
	TokenID string
	// AdminFP fingerprints the admin token an admin session was opened
	// with, so that a new admin token ends it.
	AdminFP    []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time // absolute end
	LastSeenAt time.Time // for the idle timeout
}

const sessionCols = `id, kind, COALESCE(user_id, ''), COALESCE(token_id, ''), admin_fp, created_at, expires_at, last_seen_at`

// CreateSession stores a session by the hash of its cookie value; ID is
// assigned. Sessions expired by se.CreatedAt are deleted on the way.
func (s *SQL) CreateSession(ctx context.Context, se Session, hash []byte) (Session, error) {
	if len(hash) == 0 || (se.Kind != SessionAdmin && se.Kind != SessionUser) || (se.Kind == SessionUser && (se.UserID == "" || se.TokenID == "")) {
		return Session{}, fmt.Errorf("create session: %w: incomplete session", ErrInvalid)
	}
	se.ID = newID("ses_")
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at < ?`), toNanos(se.CreatedAt)); err != nil {
		return Session{}, fmt.Errorf("delete expired sessions: %w", err)
	}
	var user, tok any
	if se.Kind == SessionUser {
		user, tok = se.UserID, se.TokenID
	}
	fp := se.AdminFP
	if fp == nil {
		fp = []byte{}
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (id, hash, kind, user_id, token_id, admin_fp, created_at, expires_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), se.ID, hash, se.Kind, user, tok, fp,
		toNanos(se.CreatedAt), toNanos(se.ExpiresAt), toNanos(se.LastSeenAt))
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	return se, nil
}

// SessionByHash returns the session with the given cookie hash, whatever
// its age (the caller checks expiry).
func (s *SQL) SessionByHash(ctx context.Context, hash []byte) (Session, error) {
	var se Session
	var created, expires, seen int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT `+sessionCols+` FROM sessions WHERE hash = ?`), hash).
		Scan(&se.ID, &se.Kind, &se.UserID, &se.TokenID, &se.AdminFP, &created, &expires, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt, se.LastSeenAt = fromNanos(created), fromNanos(expires), fromNanos(seen)
	return se, nil
}

// TouchSession records activity in the session at t (for its idle
// timeout); it writes only when the recorded time is older than a minute.
func (s *SQL) TouchSession(ctx context.Context, id string, t time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`),
		toNanos(t), id, toNanos(t.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session; an unknown id is not an error.
func (s *SQL) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id = ?`), id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
