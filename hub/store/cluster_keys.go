package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The cluster's service-account keys: approved ones verify pods' tokens,
// proposed ones (offered by an agent) wait for an operator.

// SetClusterJWKS replaces the approved service-account keys and issuer
// (the operator's set, or a rotation) and clears any proposal.
func (s *SQL) SetClusterJWKS(ctx context.Context, name string, jwks []byte, issuer string) (Cluster, error) {
	if len(jwks) == 0 {
		return Cluster{}, fmt.Errorf("%w: empty JWKS", ErrInvalid)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE clusters SET sa_jwks = ?, sa_issuer = ?,
		sa_jwks_proposed = '', sa_issuer_proposed = '', sa_proposed_by = '', sa_proposed_at = 0 WHERE name = ?`),
		string(jwks), issuer, name)
	if err != nil {
		return Cluster{}, fmt.Errorf("set service-account keys of cluster %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Cluster{}, clusterNotFound(name)
	}
	return s.GetCluster(ctx, name)
}

// ProposeClusterJWKS records keys an agent offered; they are not
// trusted until approved.
func (s *SQL) ProposeClusterJWKS(ctx context.Context, id string, p JWKSProposal) error {
	if len(p.JWKS) == 0 {
		return fmt.Errorf("%w: empty JWKS", ErrInvalid)
	}
	at := p.At
	if at.IsZero() {
		at = now()
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE clusters SET sa_jwks_proposed = ?, sa_issuer_proposed = ?, sa_proposed_by = ?, sa_proposed_at = ? WHERE id = ?`),
		string(p.JWKS), p.Issuer, p.NodeID, toNanos(at), id)
	if err != nil {
		return fmt.Errorf("record service-account keys proposed for cluster %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	return nil
}

// ApproveClusterJWKS makes the pending proposal the approved keys,
// with issuer, only if the proposal's keys and issuer are still
// exactly proposed (what the operator checked); otherwise ErrConflict.
func (s *SQL) ApproveClusterJWKS(ctx context.Context, name string, proposed JWKSProposal, issuer string) (Cluster, error) {
	if len(proposed.JWKS) == 0 {
		return Cluster{}, fmt.Errorf("%w: cluster %q has no proposed service-account keys to approve", ErrInvalid, name)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE clusters SET sa_jwks = sa_jwks_proposed, sa_issuer = ?,
			sa_jwks_proposed = '', sa_issuer_proposed = '', sa_proposed_by = '', sa_proposed_at = 0
			WHERE name = ? AND sa_jwks_proposed = ? AND sa_issuer_proposed = ?`), issuer, name, string(proposed.JWKS), proposed.Issuer)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM clusters WHERE name = ?`), name).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return clusterNotFound(name)
		}
		return fmt.Errorf("%w: the keys proposed for cluster %q changed since they were shown: show them again", ErrConflict, name)
	})
	if err != nil {
		return Cluster{}, wrap(err, "approve service-account keys of cluster %q", name)
	}
	return s.GetCluster(ctx, name)
}
