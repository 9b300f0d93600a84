package store

import (
	"context"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"acme", true},
		{"acme-prod.eu_1", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{"Acme", false},
		{"-acme", false},
		{"acme-", false},
		{".acme", false},
		{"acme.", false},
		{"ac me", false},
		{"ac/me", false},
		{"acmé", false},
		{"acme\n", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// The store refuses names that break the rule.
func TestNamesRefused(t *testing.T) { forEachStore(t, testNamesRefused) }

func testNamesRefused(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "ws")
	_, err := s.CreateWorkspace(ctx, "Bad")
	wantErr(t, err, ErrInvalid, `workspace name "Bad"`)
	_, err = s.CreateCredential(ctx, "ws", Credential{Name: "Bad", Host: "h", Kind: "basic"}, Sealed("x"))
	wantErr(t, err, ErrInvalid, `credential name "Bad"`)
	_, err = s.CreateInstall(ctx, "ws", Install{Name: "a b"})
	wantErr(t, err, ErrInvalid, `install name "a b"`)
}
