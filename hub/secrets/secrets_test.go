package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("upstream-password-xyz")
	sealed, err := s.Seal(secret, []byte("cred_1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := s.Open(sealed, []byte("cred_1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	sealed2, _ := s.Seal(secret, []byte("cred_1"))
	if bytes.Equal(sealed, sealed2) {
		t.Fatal("two seals of the same secret are identical: nonce or data key reused")
	}

	tests := []struct {
		name string
		blob []byte
		aad  string
	}{
		{"wrong aad", sealed, "cred_2"},
		{"flipped bit", flip(sealed, len(sealed)-1), "cred_1"},
		{"flipped data key", flip(sealed, 20), "cred_1"},
		{"truncated", sealed[:30], "cred_1"},
		{"empty", nil, "cred_1"},
		{"bad version", append([]byte{9}, sealed[1:]...), "cred_1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Open(tc.blob, []byte(tc.aad)); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}

	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(sealed, []byte("cred_1")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other master key: err = %v, want ErrWrongKey", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v created=%v equal=%v", err, created, bytes.Equal(k1, k2))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("world-readable key file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("zz"), 0o600)
	if _, _, err := LoadOrCreateKeyFile(bad); err == nil {
		t.Fatal("malformed key accepted")
	}
}
