package store

import (
	"context"
	"database/sql"
	"fmt"
)

// AddSigningKey stores a signing key. A zero CreatedAt is set to now.
func (s *SQL) AddSigningKey(ctx context.Context, k SigningKey) error {
	if err := checkSigningKey(k); err != nil {
		return err
	}
	err := s.insertSigningKey(ctx, s.db, k)
	if isUniqueViolation(err) {
		return fmt.Errorf("signing key %q: %w", k.KID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add signing key %q: %w", k.KID, err)
	}
	return nil
}

func checkSigningKey(k SigningKey) error {
	switch {
	case k.KID == "":
		return fmt.Errorf("%w: signing key: kid must not be empty", ErrInvalid)
	case len(k.Public) == 0:
		return fmt.Errorf("%w: signing key %q: public key must not be empty", ErrInvalid, k.KID)
	case len(k.Private) == 0:
		return fmt.Errorf("%w: signing key %q: private key must not be empty", ErrInvalid, k.KID)
	}
	return nil
}

// insertSigningKey inserts a checked key through db (the pool or a
// transaction), a zero CreatedAt set to now.
func (s *SQL) insertSigningKey(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, k SigningKey) error {
	created := k.CreatedAt
	if created.IsZero() {
		created = now()
	}
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, public_key, private_key, created_at) VALUES (?, ?, ?, ?)`),
		k.KID, k.Public, []byte(k.Private), toNanos(created))
	return err
}

// ListSigningKeys returns all signing keys, oldest first.
func (s *SQL) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT kid, public_key, private_key, created_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var priv []byte
		var created int64
		if err := rows.Scan(&k.KID, &k.Public, &priv, &created); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.Private = Sealed(priv)
		k.CreatedAt = fromNanos(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return out, nil
}

// signingKeyLockID is the PostgreSQL advisory lock that serialises the
// creation of the first signing key.
const signingKeyLockID = 0x70676b6579696e69 // "pgkeyini"

// InitSigningKeys returns every signing key, oldest first, after storing
// the one newKey makes when there is none yet. Replicas starting together
// on a fresh database all end up with the same first key: the check and
// the insert run in one transaction under a lock (an advisory lock on
// PostgreSQL, SQLite's write lock), so only one of them creates a key.
// Without that, each would sign with a key of its own that the others'
// keyrings, loaded a moment earlier, do not hold.
func (s *SQL) InitSigningKeys(ctx context.Context, newKey func() (SigningKey, error)) ([]SigningKey, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.advisoryXactLock(ctx, tx, signingKeyLockID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		k, err := newKey()
		if err != nil {
			return err
		}
		if err := checkSigningKey(k); err != nil {
			return err
		}
		return s.insertSigningKey(ctx, tx, k)
	})
	if err != nil {
		return nil, wrap(err, "create first signing key")
	}
	return s.ListSigningKeys(ctx)
}
