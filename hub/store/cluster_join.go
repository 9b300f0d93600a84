package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// joinUsable reports why a join token with these limits may not enrol, or
// nil.
func joinUsable(usesLeft, expires int64, at time.Time) error {
	switch {
	case usesLeft == 0:
		return fmt.Errorf("%w: no enrolments left", ErrJoinTokenSpent)
	case expires != 0 && toNanos(at) >= expires:
		return fmt.Errorf("%w: expired", ErrJoinTokenSpent)
	}
	return nil
}

// ClusterJoinHash returns the hash of the cluster's join token, or
// ErrJoinTokenSpent when the token has no enrolments left or expired.
func (s *SQL) ClusterJoinHash(ctx context.Context, id string) ([]byte, error) {
	var h []byte
	var left, expires int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT join_hash, join_uses_left, join_expires_at FROM clusters WHERE id = ?`), id).Scan(&h, &left, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read join token hash of cluster %q: %w", id, err)
	}
	if err := joinUsable(left, expires, now()); err != nil {
		return nil, fmt.Errorf("join token of cluster %q: %w", id, err)
	}
	return h, nil
}

// RotateJoinToken replaces the join token with a reusable one.
func (s *SQL) RotateJoinToken(ctx context.Context, name string, joinHash []byte) error {
	return s.RotateJoinTokenLimited(ctx, name, joinHash, JoinLimit{})
}

// RotateJoinTokenLimited replaces the join token with one limited to
// a number of enrolments and/or a lifetime.
func (s *SQL) RotateJoinTokenLimited(ctx context.Context, name string, joinHash []byte, limit JoinLimit) error {
	if len(joinHash) == 0 {
		return fmt.Errorf("%w: empty join token hash", ErrInvalid)
	}
	if limit.Uses < 0 {
		return fmt.Errorf("%w: join token uses %d: want 0 (unlimited) or more", ErrInvalid, limit.Uses)
	}
	left := limit.Uses
	if left == 0 {
		left = -1
	}
	var expires int64
	if !limit.ExpiresAt.IsZero() {
		expires = toNanos(limit.ExpiresAt)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE clusters SET join_hash = ?, join_uses_left = ?, join_expires_at = ? WHERE name = ?`),
		joinHash, left, expires, name)
	if err != nil {
		return fmt.Errorf("rotate join token of cluster %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return clusterNotFound(name)
	}
	return nil
}

// EnrolNode creates a node while consuming one use of the cluster's
// join token, atomically: of two enrolments racing for the last use
// exactly one succeeds, the other gets ErrJoinTokenSpent.
func (s *SQL) EnrolNode(ctx context.Context, clusterID, name string, secretHash []byte) (Node, error) {
	n, err := newNode(clusterID, name, secretHash)
	if err != nil {
		return Node{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var left, expires int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT join_uses_left, join_expires_at FROM clusters WHERE id = ?`+s.forUpdate()), clusterID).Scan(&left, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cluster id %q: %w", clusterID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := joinUsable(left, expires, n.CreatedAt); err != nil {
			return err
		}
		if left > 0 {
			// Conditional, so the use is taken exactly once even where the
			// row lock above is not (SQLite serialises writers instead).
			res, err := tx.ExecContext(ctx, s.q(`UPDATE clusters SET join_uses_left = join_uses_left - 1 WHERE id = ? AND join_uses_left > 0`), clusterID)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return fmt.Errorf("%w: no enrolments left", ErrJoinTokenSpent)
			}
		}
		return s.insertNode(ctx, tx, n, secretHash)
	})
	if err != nil {
		if errors.Is(err, ErrJoinTokenSpent) || errors.Is(err, ErrNotFound) {
			return Node{}, fmt.Errorf("enrol node %q in cluster %q: %w", name, clusterID, err)
		}
		return Node{}, wrap(err, "enrol node %q in cluster %q", name, clusterID)
	}
	return n, nil
}
