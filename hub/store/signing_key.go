package store

import (
	"context"
	"fmt"
)

// AddSigningKey stores a signing key. A zero CreatedAt is set to now.
func (s *SQL) AddSigningKey(ctx context.Context, k SigningKey) error {
	switch {
	case k.KID == "":
		return fmt.Errorf("%w: signing key: kid must not be empty", ErrInvalid)
	case len(k.Public) == 0:
		return fmt.Errorf("%w: signing key %q: public key must not be empty", ErrInvalid, k.KID)
	case len(k.Private) == 0:
		return fmt.Errorf("%w: signing key %q: private key must not be empty", ErrInvalid, k.KID)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, public_key, private_key, created_at) VALUES (?, ?, ?, ?)`),
		k.KID, k.Public, []byte(k.Private), toNanos(created))
	if isUniqueViolation(err) {
		return fmt.Errorf("signing key %q: %w", k.KID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add signing key %q: %w", k.KID, err)
	}
	return nil
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
