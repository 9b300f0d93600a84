package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

const (
	testAkashA = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	testAkashB = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
)

func TestEnsureAkashAccount(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		if _, err := s.AkashAccount(ctx, testAkashA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AkashAccount before: %v, want ErrNotFound", err)
		}
		a, created, err := s.EnsureAkashAccount(ctx, testAkashA, "")
		if err != nil || !created {
			t.Fatalf("EnsureAkashAccount = %+v, %v, %v", a, created, err)
		}
		if a.Workspace != "akash-m9l358xunh" || a.UserID != "" || !a.VerifiedAt.IsZero() {
			t.Fatalf("account %+v", a)
		}
		again, created, err := s.EnsureAkashAccount(ctx, testAkashA, "other-name")
		if err != nil || created || again.WorkspaceID != a.WorkspaceID || again.Workspace != a.Workspace {
			t.Fatalf("second EnsureAkashAccount = %+v, %v, %v", again, created, err)
		}
		got, err := s.AkashAccount(ctx, testAkashA)
		if err != nil || got.WorkspaceID != a.WorkspaceID {
			t.Fatalf("AkashAccount = %+v, %v", got, err)
		}
		// A workspace someone else made is never taken over.
		mustWorkspace(t, s, "taken")
		if _, _, err := s.EnsureAkashAccount(ctx, testAkashB, "taken"); !errors.Is(err, ErrConflict) {
			t.Fatalf("EnsureAkashAccount on a taken name: %v, want ErrConflict", err)
		}
		if _, err := s.AkashAccount(ctx, testAkashB); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused account was stored: %v", err)
		}
		for _, bad := range []struct{ addr, ws string }{
			{"cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud", ""},
			{"akash1notanaddress", ""},
			{testAkashB, "Bad Name"},
		} {
			if _, _, err := s.EnsureAkashAccount(ctx, bad.addr, bad.ws); !errors.Is(err, ErrInvalid) {
				t.Errorf("EnsureAkashAccount(%q, %q): %v, want ErrInvalid", bad.addr, bad.ws, err)
			}
		}
	})
}

func TestAkashChallenges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		exp := time.Now().Add(5 * time.Minute)
		var ids []string
		for i := 0; i < 4; i++ {
			c, err := s.CreateAkashChallenge(ctx, AkashChallenge{Address: testAkashA, Message: "m", ExpiresAt: exp}, 3, 100)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
			time.Sleep(2 * time.Millisecond) // distinct created_at
		}
		// The per-address cap keeps the newest three: the first is gone.
		if _, err := s.ConsumeAkashChallenge(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("oldest challenge over the cap: %v, want ErrNotFound", err)
		}
		c, err := s.ConsumeAkashChallenge(ctx, ids[3])
		if err != nil || c.Address != testAkashA || c.Message != "m" || c.ExpiresAt.UnixNano() != exp.UnixNano() {
			t.Fatalf("ConsumeAkashChallenge = %+v, %v", c, err)
		}
		// Single use.
		if _, err := s.ConsumeAkashChallenge(ctx, ids[3]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second consume: %v, want ErrNotFound", err)
		}
		// Expired challenges are purged when the next one is made, and
		// the global cap counts live ones only.
		if _, err := s.CreateAkashChallenge(ctx, AkashChallenge{Address: testAkashB, Message: "old", ExpiresAt: time.Now().Add(-time.Second)}, 3, 100); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAkashChallenge(ctx, AkashChallenge{Address: testAkashA, Message: "m", ExpiresAt: exp}, 3, 100); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM akash_challenges WHERE address = '` + testAkashB + `'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("address B rows %d, %v; want 0 (expired purged)", n, err)
		}
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM akash_challenges`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("rows %d, %v; want 3", n, err)
		}
		if _, err := s.CreateAkashChallenge(ctx, AkashChallenge{Address: testAkashB, Message: "m", ExpiresAt: exp}, 3, 3); !errors.Is(err, ErrTooManyChallenges) {
			t.Fatalf("over the global cap: %v, want ErrTooManyChallenges", err)
		}
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM akash_challenges`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("rows after a refusal %d, %v; want 3", n, err)
		}
	})
}

// Concurrent consumers of one challenge: exactly one gets it.
func TestConsumeAkashChallengeOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		c, err := s.CreateAkashChallenge(ctx, AkashChallenge{Address: testAkashA, Message: "m", ExpiresAt: time.Now().Add(time.Minute)}, 5, 100)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.ConsumeAkashChallenge(ctx, c.ID); err == nil {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if got != 1 {
			t.Fatalf("%d consumers got the challenge, want 1", got)
		}
	})
}

func TestLoginAkashAccount(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		tok := APIToken{Description: "akash login", ExpiresAt: time.Now().Add(time.Hour)}
		l, err := s.LoginAkashAccount(ctx, testAkashA, "tenant-a", tok, []byte("hash-1"))
		if err != nil || !l.Created || l.Account.Workspace != "tenant-a" || l.Account.UserID == "" || l.Account.VerifiedAt.IsZero() {
			t.Fatalf("first login = %+v, %v", l, err)
		}
		if l.Token.User != testAkashA || l.Token.UserID != l.Account.UserID {
			t.Fatalf("token %+v", l.Token)
		}
		ms, err := s.MembershipsOf(ctx, l.Account.UserID)
		if err != nil || len(ms) != 1 || ms[0].Workspace != "tenant-a" || ms[0].Role != RoleOwner {
			t.Fatalf("memberships %+v, %v", ms, err)
		}
		// A second login: same workspace (the name asked for is ignored),
		// a new token.
		l2, err := s.LoginAkashAccount(ctx, testAkashA, "ignored", tok, []byte("hash-2"))
		if err != nil || l2.Created || l2.Account.WorkspaceID != l.Account.WorkspaceID || l2.Account.UserID != l.Account.UserID || l2.Token.ID == l.Token.ID {
			t.Fatalf("second login = %+v, %v", l2, err)
		}
		if _, err := s.GetWorkspace(ctx, "ignored"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second login created a workspace: %v", err)
		}
		// An owner demoted by a co-owner is owner again after a login.
		if _, err := s.UpdateMember(ctx, "tenant-a", testAkashA, RoleViewer, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoginAkashAccount(ctx, testAkashA, "", tok, []byte("hash-3")); err != nil {
			t.Fatal(err)
		}
		if ms, _ := s.MembershipsOf(ctx, l.Account.UserID); len(ms) != 1 || ms[0].Role != RoleOwner {
			t.Fatalf("memberships after re-login %+v", ms)
		}

		// An account an import created (no user) gets its user on the
		// first login.
		imp, created, err := s.EnsureAkashAccount(ctx, testAkashB, "")
		if err != nil || !created {
			t.Fatal(err)
		}
		lb, err := s.LoginAkashAccount(ctx, testAkashB, "wanted", tok, []byte("hash-4"))
		if err != nil || lb.Created || lb.Account.WorkspaceID != imp.WorkspaceID || lb.Account.UserID == "" {
			t.Fatalf("login of an imported account = %+v, %v", lb, err)
		}
		ms, err = s.MembershipsOf(ctx, lb.Account.UserID)
		if err != nil || len(ms) != 1 || ms[0].WorkspaceID != imp.WorkspaceID || ms[0].Role != RoleOwner {
			t.Fatalf("imported account memberships %+v, %v", ms, err)
		}
		// A refused first login leaves nothing behind.
		if _, err := s.LoginAkashAccount(ctx, "akash1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "", tok, []byte("h5")); err == nil {
			t.Fatal("login of a malformed address succeeded")
		}
	})
}
