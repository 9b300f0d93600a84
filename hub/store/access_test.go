package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func TestMembers(t *testing.T) { forEachStore(t, testMembers) }

func testMembers(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "a")
	mustWorkspace(t, s, "b")
	m, err := s.AddMember(ctx, "a", "alice", RoleOwner)
	if err != nil {
		t.Fatal(err)
	}
	if m.UserID == "" || m.Workspace != "a" || m.Role != RoleOwner {
		t.Fatalf("AddMember: %+v", m)
	}
	// The same user joins b: no second user.
	m2, err := s.AddMember(ctx, "b", "alice", RoleViewer)
	if err != nil || m2.UserID != m.UserID {
		t.Fatalf("AddMember(b): %+v %v, want user %s", m2, err, m.UserID)
	}
	if _, err := s.AddMember(ctx, "a", "alice", RoleViewer); !errors.Is(err, ErrConflict) {
		t.Errorf("AddMember twice: %v, want ErrConflict", err)
	}
	for _, c := range []struct{ ws, user, role string }{{"nope", "bob", "viewer"}, {"a", "Bob!", "viewer"}, {"a", "bob", "god"}} {
		if _, err := s.AddMember(ctx, c.ws, c.user, Role(c.role)); err == nil {
			t.Errorf("AddMember(%v): no error", c)
		}
	}
	if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused AddMember created user bob: %v", err)
	}
	if _, err := s.AddMember(ctx, "a", "bob", RoleOperator); err != nil {
		t.Fatal(err)
	}
	ms, err := s.ListMembers(ctx, "a")
	if err != nil || len(ms) != 2 || ms[0].User != "alice" || ms[1].User != "bob" || ms[1].Role != RoleOperator {
		t.Fatalf("ListMembers: %+v %v", ms, err)
	}
	of, err := s.MembershipsOf(ctx, m.UserID)
	if err != nil || len(of) != 2 || of[0].Workspace != "a" || of[1].Workspace != "b" || of[1].Role != RoleViewer {
		t.Fatalf("MembershipsOf: %+v %v", of, err)
	}

	// The last owner stays unless the caller says otherwise.
	if _, err := s.UpdateMember(ctx, "a", "alice", RoleViewer, true); !errors.Is(err, ErrLastOwner) {
		t.Errorf("demote last owner: %v", err)
	}
	if _, err := s.RemoveMember(ctx, "a", "alice", true); !errors.Is(err, ErrLastOwner) {
		t.Errorf("remove last owner: %v", err)
	}
	if _, err := s.UpdateMember(ctx, "a", "bob", RoleOwner, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateMember(ctx, "a", "alice", RoleViewer, true); err != nil {
		t.Errorf("demote one of two owners: %v", err)
	}
	if _, err := s.RemoveMember(ctx, "a", "bob", false); err != nil {
		t.Errorf("admin removes last owner: %v", err)
	}
	if _, err := s.RemoveMember(ctx, "a", "bob", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if _, err := s.UpdateMember(ctx, "b", "bob", RoleViewer, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("update a non-member: %v", err)
	}

	// Deleting a user ends its memberships, tokens and sessions.
	h := sha256.Sum256([]byte("pgu_bob"))
	if _, err := s.CreateAPIToken(ctx, "bob", APIToken{}, h[:]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APITokenByHash(ctx, h[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted user: %v", err)
	}
	if err := s.DeleteUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}

	// Deleting a workspace ends its memberships, not its users.
	if _, err := s.DeleteWorkspace(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	if of, _ := s.MembershipsOf(ctx, m.UserID); len(of) != 1 || of[0].Workspace != "a" {
		t.Errorf("after deleting b: %+v", of)
	}
}

func TestAPITokens(t *testing.T) { forEachStore(t, testAPITokens) }

func testAPITokens(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "a")
	alice, _ := s.AddMember(ctx, "a", "alice", RoleOwner)
	bob, _ := s.AddMember(ctx, "a", "bob", RoleViewer)
	h1 := sha256.Sum256([]byte("pgu_one"))
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	tk, err := s.CreateAPIToken(ctx, "alice", APIToken{Description: "laptop", ExpiresAt: exp}, h1[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAPIToken(ctx, "carol", APIToken{}, h1[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of unknown user: %v", err)
	}
	got, err := s.APITokenByHash(ctx, h1[:])
	if err != nil || got.ID != tk.ID || got.UserID != alice.UserID || got.User != "alice" || !got.ExpiresAt.Equal(exp) || got.Description != "laptop" {
		t.Fatalf("APITokenByHash: %+v %v", got, err)
	}
	if !got.Usable(time.Now()) || got.Usable(exp) {
		t.Errorf("Usable around expiry wrong")
	}
	other := sha256.Sum256([]byte("pgu_two"))
	if _, err := s.APITokenByHash(ctx, other[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}
	if err := s.TouchAPIToken(ctx, tk.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAPIToken(ctx, tk.ID); got.LastUsedAt.IsZero() {
		t.Error("TouchAPIToken recorded nothing")
	}
	if _, err := s.CreateAPIToken(ctx, "bob", APIToken{}, other[:]); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListAPITokens(ctx, alice.UserID); len(l) != 1 {
		t.Errorf("alice's tokens: %+v", l)
	}
	if l, _ := s.ListAPITokens(ctx, ""); len(l) != 2 {
		t.Errorf("all tokens: %+v", l)
	}
	// A session opened with the token ends with it.
	sh := sha256.Sum256([]byte("cookie"))
	t0 := time.Now().UTC()
	se, err := s.CreateSession(ctx, Session{Kind: SessionUser, UserID: alice.UserID, TokenID: tk.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0}, sh[:])
	if err != nil {
		t.Fatal(err)
	}
	// Bob cannot revoke alice's token; it is not found for him.
	if _, err := s.RevokeAPIToken(ctx, tk.ID, bob.UserID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob revokes alice's token: %v", err)
	}
	if _, err := s.SessionByHash(ctx, sh[:]); err != nil {
		t.Fatalf("session after refused revoke: %v", err)
	}
	r, err := s.RevokeAPIToken(ctx, tk.ID, alice.UserID)
	if err != nil || r.RevokedAt.IsZero() || r.Usable(time.Now()) {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := s.SessionByHash(ctx, sh[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("session %s of a revoked token: %v", se.ID, err)
	}
	// Deleting the user ends its other sessions.
	t2 := sha256.Sum256([]byte("pgu_three"))
	tk2, _ := s.CreateAPIToken(ctx, "alice", APIToken{}, t2[:])
	if _, err := s.CreateSession(ctx, Session{Kind: SessionUser, UserID: alice.UserID, TokenID: tk2.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0}, sh[:]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, sh[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
}

func TestSessions(t *testing.T) { forEachStore(t, testSessions) }

func testSessions(t *testing.T, s *SQL) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := sha256.Sum256([]byte("c1"))
	se, err := s.CreateSession(ctx, Session{Kind: SessionAdmin, AdminFP: []byte("fp"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0}, h[:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByHash(ctx, h[:])
	if err != nil || got.ID != se.ID || got.Kind != SessionAdmin || string(got.AdminFP) != "fp" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("SessionByHash: %+v %v", got, err)
	}
	if err := s.TouchSession(ctx, se.ID, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SessionByHash(ctx, h[:]); !got.LastSeenAt.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("last seen %v", got.LastSeenAt)
	}
	if _, err := s.CreateSession(ctx, Session{Kind: SessionUser}, h[:]); !errors.Is(err, ErrInvalid) {
		t.Errorf("user session without user: %v", err)
	}
	// Creating a session later deletes the expired one.
	h2 := sha256.Sum256([]byte("c2"))
	t1 := t0.Add(2 * time.Hour)
	if _, err := s.CreateSession(ctx, Session{Kind: SessionAdmin, CreatedAt: t1, ExpiresAt: t1.Add(time.Hour), LastSeenAt: t1}, h2[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, h[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session kept: %v", err)
	}
	s2, _ := s.SessionByHash(ctx, h2[:])
	if err := s.DeleteSession(ctx, s2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, h2[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}
}

func TestActivity(t *testing.T) { forEachStore(t, testActivity) }

func testActivity(t *testing.T, s *SQL) {
	ctx := context.Background()
	for i, ws := range []string{"a", "b", "a", ""} {
		if err := s.AppendActivity(ctx, Activity{Principal: "alice", PrincipalKind: "user", Action: "registry.create",
			TargetKind: "registry", Target: "gh", Workspace: ws, WorkspaceID: "id-" + ws, Status: 201 + i, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.QueryActivity(ctx, ActivityQuery{})
	if err != nil || len(all) != 4 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	a, _ := s.QueryActivity(ctx, ActivityQuery{WorkspaceID: "id-a"})
	if len(a) != 2 || a[0].Status != 201 || a[1].Status != 203 || a[0].Time.IsZero() || a[0].Principal != "alice" {
		t.Errorf("workspace a: %+v", a)
	}
	after, _ := s.QueryActivity(ctx, ActivityQuery{AfterID: all[2].ID})
	if len(after) != 1 || after[0].ID != all[3].ID {
		t.Errorf("after: %+v", after)
	}
}

func TestAuditWorkspaces(t *testing.T) { forEachStore(t, testAuditWorkspaces) }

func testAuditWorkspaces(t *testing.T, s *SQL) {
	ctx := context.Background()
	if err := s.AppendAudit(ctx, []AuditEvent{{Workspace: "a", Install: "x"}, {Workspace: "b", Install: "x"}, {Workspace: "c", Install: "x"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ws   []string
		want int
	}{{nil, 3}, {[]string{}, 0}, {[]string{"a"}, 1}, {[]string{"a", "c"}, 2}} {
		evs, err := s.QueryAudit(ctx, AuditQuery{Workspaces: c.ws})
		if err != nil || len(evs) != c.want {
			t.Errorf("Workspaces %v: %d events (%v), want %d", c.ws, len(evs), err, c.want)
		}
	}
}
