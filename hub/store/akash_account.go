package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pullgate/pullgate/pkg/akash"
)

// AkashAccount is an Akash account (bech32 akash1...) and the one
// workspace it owns on this hub. UserID is empty while the workspace
// exists only because the provider imported the account's SDL credentials
// and nobody has logged in with the account's key yet.
type AkashAccount struct {
	Address     string
	WorkspaceID string
	Workspace   string // workspace name
	UserID      string // "" until the first verified login
	CreatedAt   time.Time
	VerifiedAt  time.Time // zero: never verified
}

// AkashChallenge is a login challenge: the exact text the account's key
// must sign (ADR-036), single use and short-lived.
type AkashChallenge struct {
	ID        string
	Address   string
	Message   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ErrTooManyChallenges refuses a challenge while the hub holds as many
// live ones as it allows in all.
var ErrTooManyChallenges = errors.New("too many pending login challenges on this hub: try again in a few minutes")

// DefaultAkashWorkspace is the workspace name a first login creates when
// the tenant names none: "akash-" and the first 10 characters after
// "akash1".
func DefaultAkashWorkspace(address string) string {
	rest := strings.TrimPrefix(address, akash.AddressPrefix+"1")
	if len(rest) > 10 {
		rest = rest[:10]
	}
	return "akash-" + rest
}

func akashAccountNotFound(address string) error {
	return fmt.Errorf("akash account %q: %w", address, ErrNotFound)
}

const akashAccountSelect = `SELECT a.address, a.workspace_id, w.name, COALESCE(a.user_id, ''), a.created_at, a.verified_at
	FROM akash_accounts a JOIN workspaces w ON w.id = a.workspace_id`

func scanAkashAccount(r rowScanner) (AkashAccount, error) {
	var a AkashAccount
	var created, verified int64
	if err := r.Scan(&a.Address, &a.WorkspaceID, &a.Workspace, &a.UserID, &created, &verified); err != nil {
		return AkashAccount{}, err
	}
	a.CreatedAt, a.VerifiedAt = fromNanos(created), optNanos(verified)
	return a, nil
}

// AkashAccount returns the account with the given address.
func (s *SQL) AkashAccount(ctx context.Context, address string) (AkashAccount, error) {
	return s.akashAccount(ctx, s.rdb, address, false)
}

func (s *SQL) akashAccount(ctx context.Context, q queryRower, address string, lock bool) (AkashAccount, error) {
	query := akashAccountSelect + ` WHERE a.address = ?`
	if lock {
		query += s.forUpdate()
	}
	a, err := scanAkashAccount(q.QueryRowContext(ctx, s.q(query), address))
	if errors.Is(err, sql.ErrNoRows) {
		return AkashAccount{}, akashAccountNotFound(address)
	}
	if err != nil {
		return AkashAccount{}, fmt.Errorf("get Akash account %q: %w", address, err)
	}
	return a, nil
}

// EnsureAkashAccount returns the address's account, creating it with a
// new workspace named workspaceName (DefaultAkashWorkspace when empty) in
// one transaction when there is none; created reports that. A workspace
// of that name that already exists is a conflict: an account never takes
// over a workspace someone else made.
func (s *SQL) EnsureAkashAccount(ctx context.Context, address, workspaceName string) (AkashAccount, bool, error) {
	var out AkashAccount
	var created bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, created, err = s.ensureAkashAccount(ctx, tx, address, workspaceName)
		return err
	})
	if err != nil {
		return AkashAccount{}, false, wrap(err, "ensure Akash account %q", address)
	}
	return out, created, nil
}

func (s *SQL) ensureAkashAccount(ctx context.Context, tx *sql.Tx, address, workspaceName string) (AkashAccount, bool, error) {
	if err := akash.ValidateAddress(address); err != nil {
		return AkashAccount{}, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a, err := s.akashAccount(ctx, tx, address, true)
	if err == nil {
		return a, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return AkashAccount{}, false, err
	}
	if workspaceName == "" {
		workspaceName = DefaultAkashWorkspace(address)
	}
	if err := checkName("workspace", workspaceName); err != nil {
		return AkashAccount{}, false, err
	}
	a = AkashAccount{Address: address, WorkspaceID: newID("ws_"), Workspace: workspaceName, CreatedAt: now()}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)`),
		a.WorkspaceID, a.Workspace, toNanos(a.CreatedAt))
	if isUniqueViolation(err) {
		return AkashAccount{}, false, fmt.Errorf("workspace %q already exists and belongs to someone else: choose another workspace name: %w", workspaceName, ErrConflict)
	}
	if err != nil {
		return AkashAccount{}, false, err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO akash_accounts (address, workspace_id, user_id, created_at, verified_at) VALUES (?, ?, NULL, ?, 0)`),
		a.Address, a.WorkspaceID, toNanos(a.CreatedAt))
	if isUniqueViolation(err) {
		// Another hub replica created it at the same moment.
		return AkashAccount{}, false, fmt.Errorf("akash account %q was created concurrently, try again: %w", address, ErrConflict)
	}
	if err != nil {
		return AkashAccount{}, false, err
	}
	return a, true, nil
}

// CreateAkashChallenge stores a login challenge (ID and CreatedAt are
// assigned). It first purges expired challenges of every address, then
// keeps at most perAddress live ones for c.Address (deleting the oldest),
// and refuses with ErrTooManyChallenges when the hub already holds total
// live challenges.
func (s *SQL) CreateAkashChallenge(ctx context.Context, c AkashChallenge, perAddress, total int) (AkashChallenge, error) {
	if perAddress < 1 || total < 1 {
		return AkashChallenge{}, fmt.Errorf("create login challenge: %w: limits must be positive", ErrInvalid)
	}
	c.ID, c.CreatedAt = newID("ach_"), now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM akash_challenges WHERE expires_at <= ?`), toNanos(c.CreatedAt)); err != nil {
			return err
		}
		// Keep the newest perAddress-1 of this address, to make room.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM akash_challenges WHERE address = ? AND id NOT IN
			(SELECT id FROM akash_challenges WHERE address = ? ORDER BY created_at DESC, id DESC LIMIT ?)`),
			c.Address, c.Address, perAddress-1); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM akash_challenges`).Scan(&n); err != nil {
			return err
		}
		if n >= total {
			return ErrTooManyChallenges
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO akash_challenges (id, address, message, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			c.ID, c.Address, c.Message, toNanos(c.CreatedAt), toNanos(c.ExpiresAt))
		return err
	})
	if errors.Is(err, ErrTooManyChallenges) {
		return AkashChallenge{}, err
	}
	if err != nil {
		return AkashChallenge{}, fmt.Errorf("create login challenge for %q: %w", c.Address, err)
	}
	return c, nil
}

// ConsumeAkashChallenge deletes the challenge and returns it, expired or
// not (the caller checks ExpiresAt): a challenge is used once, whether the
// signature then checks out or not. Two concurrent consumers cannot both
// get it.
func (s *SQL) ConsumeAkashChallenge(ctx context.Context, id string) (AkashChallenge, error) {
	var c AkashChallenge
	var created, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`DELETE FROM akash_challenges WHERE id = ? RETURNING id, address, message, created_at, expires_at`), id).
		Scan(&c.ID, &c.Address, &c.Message, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return AkashChallenge{}, fmt.Errorf("login challenge: %w", ErrNotFound)
	}
	if err != nil {
		return AkashChallenge{}, fmt.Errorf("consume login challenge: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = fromNanos(created), fromNanos(expires)
	return c, nil
}

// AkashLogin is what a verified login did.
type AkashLogin struct {
	Account AkashAccount
	Token   APIToken
	// Created: this login created the account and its workspace.
	Created bool
}

// LoginAkashAccount records a verified login of address (the caller has
// checked the signature). In one transaction it creates the account and
// its workspace when absent (named workspaceName, default
// DefaultAkashWorkspace), creates the user named after the address when
// absent, attaches it to the account, makes it owner of the account's
// workspace (adding or promoting the membership: the account's key is the
// workspace's final authority) and records the verification time. Then it
// stores the new API token t with the given hash for that user
// (CreateAPIToken).
func (s *SQL) LoginAkashAccount(ctx context.Context, address, workspaceName string, t APIToken, hash []byte) (AkashLogin, error) {
	var out AkashLogin
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, created, err := s.ensureAkashAccount(ctx, tx, address, workspaceName)
		if err != nil {
			return err
		}
		at := now()
		if a.UserID == "" {
			err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM users WHERE name = ?`), address).Scan(&a.UserID)
			if errors.Is(err, sql.ErrNoRows) {
				a.UserID = newID("usr_")
				_, err = tx.ExecContext(ctx, s.q(`INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`), a.UserID, address, toNanos(at))
			}
			if err != nil {
				return err
			}
		}
		var role string
		err = tx.QueryRowContext(ctx, s.q(`SELECT role FROM memberships WHERE user_id = ? AND workspace_id = ?`), a.UserID, a.WorkspaceID).Scan(&role)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO memberships (user_id, workspace_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`),
				a.UserID, a.WorkspaceID, string(RoleOwner), toNanos(at), toNanos(at))
		case err == nil && role != string(RoleOwner):
			_, err = tx.ExecContext(ctx, s.q(`UPDATE memberships SET role = ?, updated_at = ? WHERE user_id = ? AND workspace_id = ?`),
				string(RoleOwner), toNanos(at), a.UserID, a.WorkspaceID)
		}
		if err != nil {
			return err
		}
		a.VerifiedAt = at
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE akash_accounts SET user_id = ?, verified_at = ? WHERE address = ?`),
			a.UserID, toNanos(at), address); err != nil {
			return err
		}
		out.Account, out.Created = a, created
		return nil
	})
	if err != nil {
		return AkashLogin{}, wrap(err, "log in Akash account %q", address)
	}
	if out.Token, err = s.CreateAPIToken(ctx, address, t, hash); err != nil {
		return AkashLogin{}, err
	}
	return out, nil
}
