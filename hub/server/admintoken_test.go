package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The admin token file is refused when others can read it, as the master
// key is; the error names the file and the fix.
func TestServeRefusesReadableAdminToken(t *testing.T) {
	data := t.TempDir()
	h, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	path := filepath.Join(data, "admin.token")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = startHub(t, data, "")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a world-readable admin token: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := startHub(t, data, ""); err != nil {
		t.Fatalf("start after chmod 600: %v", err)
	}
}

func TestCheckSecretMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o644, false},
		{0o604, false},
		{0o606, false},
		{0o660, false}, // unless owned by root (a Kubernetes Secret volume)
		{0o640, false},
	} {
		path := filepath.Join(dir, tc.mode.String())
		if err := os.WriteFile(path, []byte("pga_0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.ok || (tc.mode&0o007 == 0 && ownedByRoot(fi))
		err = checkSecretMode(path, fi)
		if (err == nil) != want {
			t.Errorf("mode %v (root-owned %v): err %v, want ok=%v", tc.mode, ownedByRoot(fi), err, want)
		}
		if err != nil && (!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600")) {
			t.Errorf("mode %v: error %q does not name the file and the fix", tc.mode, err)
		}
		if _, _, err := loadOrCreateAdminToken(path); (err == nil) != want {
			t.Errorf("loadOrCreateAdminToken with mode %v: %v, want ok=%v", tc.mode, err, want)
		}
	}
}
