package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSessionsPerTokenBounded(t *testing.T) { forEachStore(t, testSessionsPerTokenBounded) }

// A token holder signing in in a loop keeps MaxSessionsPerToken sessions:
// the oldest end, other tokens' sessions stay.
func testSessionsPerTokenBounded(t *testing.T, s *SQL) {
	ctx := context.Background()
	if _, err := s.CreateWorkspace(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	var toks []APIToken
	for _, u := range []string{"alice", "bob"} {
		m, err := s.AddMember(ctx, "a", u, RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte("tok-" + u))
		tok, err := s.CreateAPIToken(ctx, u, APIToken{}, h[:])
		if err != nil {
			t.Fatal(err)
		}
		tok.UserID = m.UserID
		toks = append(toks, tok)
	}
	t0 := time.Now()
	hash := func(who string, i int) []byte { h := sha256.Sum256([]byte(fmt.Sprint(who, i))); return h[:] }
	open := func(tok APIToken, i int) {
		at := t0.Add(time.Duration(i) * time.Second)
		if _, err := s.CreateSession(ctx, Session{Kind: SessionUser, UserID: tok.UserID, TokenID: tok.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour), LastSeenAt: at}, hash(tok.User, i)); err != nil {
			t.Fatal(err)
		}
	}
	open(toks[1], 0)
	n := MaxSessionsPerToken + 5
	for i := range n {
		open(toks[0], i)
	}
	for i := range n {
		_, err := s.SessionByHash(ctx, hash("alice", i))
		if gone := errors.Is(err, ErrNotFound); gone != (i < n-MaxSessionsPerToken) {
			t.Errorf("alice's session %d: %v", i, err)
		}
	}
	if _, err := s.SessionByHash(ctx, hash("bob", 0)); err != nil {
		t.Errorf("bob's session ended by alice's sign-ins: %v", err)
	}
}
