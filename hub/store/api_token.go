package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// APIToken is a user's API token's metadata. The token itself is never
// stored, only its SHA-256 (a token has 256 random bits, so a plain hash
// is enough: there is nothing to guess).
type APIToken struct {
	ID          string
	UserID      string
	User        string // user name
	Description string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
	LastUsedAt  time.Time // zero: never used
	RevokedAt   time.Time // zero: not revoked
}

// Usable reports whether the token may authenticate at t.
func (t APIToken) Usable(at time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || at.Before(t.ExpiresAt))
}

// MaxTokenDescription bounds an API token's description.
const MaxTokenDescription = 200

func apiTokenNotFound(id string) error { return fmt.Errorf("API token %q: %w", id, ErrNotFound) }

const apiTokenSelect = `SELECT t.id, t.user_id, u.name, t.description, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
	FROM api_tokens t JOIN users u ON u.id = t.user_id`

func scanAPIToken(r rowScanner) (APIToken, error) {
	var t APIToken
	var created, expires, used, revoked int64
	if err := r.Scan(&t.ID, &t.UserID, &t.User, &t.Description, &created, &expires, &used, &revoked); err != nil {
		return APIToken{}, err
	}
	t.CreatedAt = fromNanos(created)
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = optNanos(expires), optNanos(used), optNanos(revoked)
	return t, nil
}

// optNanos reads a time column where 0 means unset.
func optNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// optToNanos writes a time column where 0 means unset.
func optToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toNanos(t)
}

// CreateAPIToken stores a new token of the named user by its hash; ID and
// CreatedAt are assigned.
func (s *SQL) CreateAPIToken(ctx context.Context, user string, t APIToken, hash []byte) (APIToken, error) {
	if len(hash) == 0 {
		return APIToken{}, fmt.Errorf("create API token: %w: empty hash", ErrInvalid)
	}
	if len(t.Description) > MaxTokenDescription {
		return APIToken{}, fmt.Errorf("%w: description: at most %d bytes", ErrInvalid, MaxTokenDescription)
	}
	u, err := s.GetUser(ctx, user)
	if err != nil {
		return APIToken{}, err
	}
	t.ID, t.UserID, t.User, t.CreatedAt = newID("tok_"), u.ID, u.Name, now()
	t.LastUsedAt, t.RevokedAt = time.Time{}, time.Time{}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO api_tokens (id, user_id, description, hash, created_at, expires_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, 0)`), t.ID, t.UserID, t.Description, hash, toNanos(t.CreatedAt), optToNanos(t.ExpiresAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("create API token for user %q: %w", user, err)
	}
	return t, nil
}

// APITokenByHash returns the token with the given hash, whatever its
// state (the caller checks Usable), and its user.
func (s *SQL) APITokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	t, err := scanAPIToken(s.rdb.QueryRowContext(ctx, s.q(apiTokenSelect+` WHERE t.hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, fmt.Errorf("API token: %w", ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("look up API token: %w", err)
	}
	return t, nil
}

// GetAPIToken returns a token by id.
func (s *SQL) GetAPIToken(ctx context.Context, id string) (APIToken, error) {
	t, err := scanAPIToken(s.rdb.QueryRowContext(ctx, s.q(apiTokenSelect+` WHERE t.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, apiTokenNotFound(id)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("get API token %q: %w", id, err)
	}
	return t, nil
}

// ListAPITokens returns the tokens of the user with id userID, or of every
// user when userID is empty, newest first.
func (s *SQL) ListAPITokens(ctx context.Context, userID string) ([]APIToken, error) {
	query, args := apiTokenSelect, []any{}
	if userID != "" {
		query += ` WHERE t.user_id = ?`
		args = append(args, userID)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query+` ORDER BY t.created_at DESC, t.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes the token with the given id and deletes the
// console sessions opened with it. With userID set, only a token of that
// user is found (another user's answers ErrNotFound). Revoking a revoked
// token keeps its first revocation time.
func (s *SQL) RevokeAPIToken(ctx context.Context, id, userID string) (APIToken, error) {
	var out APIToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanAPIToken(tx.QueryRowContext(ctx, s.q(apiTokenSelect+` WHERE t.id = ?`+s.forUpdate()), id))
		if errors.Is(err, sql.ErrNoRows) || (err == nil && userID != "" && t.UserID != userID) {
			return apiTokenNotFound(id)
		}
		if err != nil {
			return err
		}
		if t.RevokedAt.IsZero() {
			t.RevokedAt = now()
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE api_tokens SET revoked_at = ? WHERE id = ?`), toNanos(t.RevokedAt), id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_id = ?`), id); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return APIToken{}, wrap(err, "revoke API token %q", id)
	}
	return out, nil
}

// TouchAPIToken records a use of the token at t. To keep sign-ins from
// writing on every request it only writes when the recorded use is older
// than a minute.
func (s *SQL) TouchAPIToken(ctx context.Context, id string, t time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?`),
		toNanos(t), id, toNanos(t.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("record use of API token %s: %w", id, err)
	}
	return nil
}
