package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCredentials(t *testing.T) { forEachStore(t, testCredentials) }

func testCredentials(t *testing.T, s *SQL) {
	ctx := context.Background()
	w := mustWorkspace(t, s, "acme")
	other := mustWorkspace(t, s, "other")

	c, err := s.CreateCredential(ctx, "acme", Credential{
		ID: "ignored", Name: "ghcr", Host: "ghcr.io/org-a", Kind: "basic", Username: "bot", Insecure: true, Enabled: true,
	}, Sealed("sealed-v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, "cred_") || c.WorkspaceID != w.ID || c.Version != 1 || !c.Enabled || !c.Insecure ||
		c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Fatalf("created = %+v", c)
	}
	got, err := s.GetCredential(ctx, "acme", "ghcr")
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("GetCredential = %+v, %v; want %+v", got, err, c)
	}
	dis, err := s.CreateCredential(ctx, "acme", Credential{Name: "docker", Host: "docker.io", Kind: "token"}, Sealed("tok"))
	if err != nil || dis.Enabled {
		t.Fatalf("CreateCredential(disabled) = %+v, %v", dis, err)
	}
	// Same name in another workspace is fine.
	oc := mustCredential(t, s, "other", "ghcr", "other-secret")

	list, err := s.ListCredentials(ctx, "acme")
	if err != nil || !reflect.DeepEqual(list, []Credential{dis, c}) {
		t.Fatalf("ListCredentials = %+v, %v", list, err)
	}
	byID, err := s.CredentialsByWorkspaceID(ctx, w.ID)
	if err != nil || !reflect.DeepEqual(byID, list) {
		t.Fatalf("CredentialsByWorkspaceID = %+v, %v", byID, err)
	}
	byID, err = s.CredentialsByWorkspaceID(ctx, other.ID)
	if err != nil || !reflect.DeepEqual(byID, []Credential{oc}) {
		t.Fatalf("CredentialsByWorkspaceID(other) = %+v, %v", byID, err)
	}
	byID, err = s.CredentialsByWorkspaceID(ctx, "ws_unknown")
	if err != nil || len(byID) != 0 {
		t.Fatalf("CredentialsByWorkspaceID(unknown) = %+v, %v", byID, err)
	}

	// Errors.
	for _, tc := range []struct {
		name   string
		err    error
		target error
		msg    string
	}{
		{"duplicate", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "ghcr", Host: "h", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrConflict, `credential "ghcr" in workspace "acme"`},
		{"create in missing workspace", func() error {
			_, err := s.CreateCredential(ctx, "nope", Credential{Name: "x", Host: "h", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrNotFound, `workspace "nope"`},
		{"empty secret", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "x", Host: "h", Kind: "basic"}, nil)
			return err
		}(), ErrInvalid, "secret"},
		{"empty host", func() error {
			_, err := s.CreateCredential(ctx, "acme", Credential{Name: "x", Kind: "basic"}, Sealed("x"))
			return err
		}(), ErrInvalid, "host"},
		{"get missing", func() error { _, err := s.GetCredential(ctx, "acme", "nope"); return err }(),
			ErrNotFound, `credential "nope" in workspace "acme": not found`},
		{"get in missing workspace", func() error { _, err := s.GetCredential(ctx, "nope", "ghcr"); return err }(),
			ErrNotFound, `workspace "nope": not found`},
		{"list in missing workspace", func() error { _, err := s.ListCredentials(ctx, "nope"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"update missing", func() error {
			_, err := s.UpdateCredential(ctx, "acme", "nope", CredentialUpdate{})
			return err
		}(), ErrNotFound, `credential "nope"`},
		{"update empty secret", func() error {
			_, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed{}})
			return err
		}(), ErrInvalid, "secret"},
		{"delete missing", s.DeleteCredential(ctx, "acme", "nope"), ErrNotFound, `credential "nope"`},
		{"delete in missing workspace", s.DeleteCredential(ctx, "nope", "ghcr"), ErrNotFound, `workspace "nope"`},
		{"secret of missing version", func() error { _, err := s.CredentialSecret(ctx, c.ID, 2); return err }(),
			ErrNotFound, "version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.target, tc.msg) })
	}

	// Updates without a secret keep the version but bump UpdatedAt.
	user, off := "robot", false
	u1, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Username: &user, Insecure: &off})
	if err != nil {
		t.Fatal(err)
	}
	if u1.Username != "robot" || u1.Insecure || !u1.Enabled || u1.Version != 1 || !u1.UpdatedAt.After(c.UpdatedAt) ||
		!u1.CreatedAt.Equal(c.CreatedAt) || u1.Host != c.Host || u1.Kind != c.Kind {
		t.Fatalf("after update = %+v", u1)
	}
	// New secret versions.
	u2, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed("sealed-v2"), Enabled: &off})
	if err != nil || u2.Version != 2 || u2.Enabled {
		t.Fatalf("after secret update = %+v, %v", u2, err)
	}
	u3, err := s.UpdateCredential(ctx, "acme", "ghcr", CredentialUpdate{Secret: Sealed("sealed-v3")})
	if err != nil || u3.Version != 3 || u3.Username != "robot" {
		t.Fatalf("after second secret update = %+v, %v", u3, err)
	}
	if got, _ := s.GetCredential(ctx, "acme", "ghcr"); !reflect.DeepEqual(got, u3) {
		t.Fatalf("GetCredential = %+v, want %+v", got, u3)
	}
	for v, want := range map[int]string{1: "sealed-v1", 2: "sealed-v2", 3: "sealed-v3"} {
		sec, err := s.CredentialSecret(ctx, c.ID, v)
		if err != nil || string(sec) != want {
			t.Errorf("CredentialSecret(v%d) = %q, %v; want %q", v, sec, err, want)
		}
	}
	if sec, err := s.CredentialSecret(ctx, oc.ID, 1); err != nil || string(sec) != "other-secret" {
		t.Errorf("other workspace secret = %q, %v", sec, err)
	}

	if err := s.DeleteCredential(ctx, "acme", "ghcr"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCredential(ctx, "acme", "ghcr")
	wantErr(t, err, ErrNotFound, "")
	_, err = s.CredentialSecret(ctx, c.ID, 1)
	wantErr(t, err, ErrNotFound, "")
	if _, err := s.GetCredential(ctx, "other", "ghcr"); err != nil {
		t.Fatalf("other workspace's credential went too: %v", err)
	}
}

// The network policy fields (migration 0003) round-trip through create,
// read and update, and default to the safe side.
func TestCredentialNetworkPolicy(t *testing.T) { forEachStore(t, testCredentialNetworkPolicy) }

func testCredentialNetworkPolicy(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "acme")
	c, err := s.CreateCredential(ctx, "acme", Credential{Name: "lan", Host: "registry.lan", Kind: "basic",
		AllowPrivateNetwork: true, RealmHosts: []string{"auth.lan", "sso.lan:8443"}}, Sealed("x"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "acme", "lan")
	if err != nil || !got.AllowPrivateNetwork || !slices.Equal(got.RealmHosts, []string{"auth.lan", "sso.lan:8443"}) {
		t.Fatalf("GetCredential = %+v, %v; want %+v", got, err, c)
	}
	off, none := false, []string{}
	u, err := s.UpdateCredential(ctx, "acme", "lan", CredentialUpdate{AllowPrivateNetwork: &off, RealmHosts: &none})
	if err != nil || u.AllowPrivateNetwork || len(u.RealmHosts) != 0 {
		t.Fatalf("UpdateCredential = %+v, %v", u, err)
	}
	if got, _ := s.GetCredential(ctx, "acme", "lan"); got.AllowPrivateNetwork || len(got.RealmHosts) != 0 {
		t.Fatalf("after update = %+v", got)
	}
	plain := mustCredential(t, s, "acme", "plain", "y")
	if plain.AllowPrivateNetwork || plain.RealmHosts != nil {
		t.Fatalf("defaults = %+v", plain)
	}
}

// A credential's kind changes only together with a new secret (the
// secret's form depends on the kind), on both dialects.
func TestCredentialKindChange(t *testing.T) { forEachStore(t, testCredentialKindChange) }

func testCredentialKindChange(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "acme")
	mustCredential(t, s, "acme", "gh", "x")
	tok := "token"
	_, err := s.UpdateCredential(ctx, "acme", "gh", CredentialUpdate{Kind: &tok})
	wantErr(t, err, ErrInvalid, "new kind needs a new secret")
	u, err := s.UpdateCredential(ctx, "acme", "gh", CredentialUpdate{Kind: &tok, Secret: Sealed("v2")})
	if err != nil || u.Kind != "token" || u.Version != 2 {
		t.Fatalf("UpdateCredential = %+v, %v", u, err)
	}
	if got, err := s.GetCredential(ctx, "acme", "gh"); err != nil || got.Kind != "token" || got.Version != 2 {
		t.Fatalf("GetCredential = %+v, %v", got, err)
	}
}
