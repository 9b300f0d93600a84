package jointoken

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/testlog"
)

func TestStatic(t *testing.T) {
	if tok, err := Static("  pgj1.c.secretsecretsecret \n").Token(); err != nil || tok != "pgj1.c.secretsecretsecret" {
		t.Fatalf("%q %v", tok, err)
	}
	if _, err := Static(" ").Token(); err == nil {
		t.Fatal("empty token accepted")
	}
	if Static("x").Changed() != nil {
		t.Fatal("a static token never changes")
	}
}

func waitChanged(t *testing.T, f *File, want bool) {
	t.Helper()
	select {
	case <-f.Changed():
		if !want {
			t.Fatal("unexpected change signal")
		}
	case <-time.After(map[bool]time.Duration{true: 3 * time.Second, false: 200 * time.Millisecond}[want]):
		if want {
			t.Fatal("no change signal")
		}
	}
}

func TestWatchFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		update func(t *testing.T, dir string)
	}{
		{"rewrite in place", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "token"), []byte("token-two"), 0o600)
		}},
		{"rename over", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ".tmp"), []byte("token-two"), 0o600)
			os.Rename(filepath.Join(dir, ".tmp"), filepath.Join(dir, "token"))
		}},
		{"kubernetes ..data swap", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "..v2"), 0o755)
			os.WriteFile(filepath.Join(dir, "..v2", "token"), []byte("token-two"), 0o600)
			os.Symlink("..v2", filepath.Join(dir, "..data_tmp"))
			os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
			os.RemoveAll(filepath.Join(dir, "..v1"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.Contains(tc.name, "..data") {
				os.Mkdir(filepath.Join(dir, "..v1"), 0o755)
				os.WriteFile(filepath.Join(dir, "..v1", "token"), []byte("token-one\n"), 0o600)
				os.Symlink("..v1", filepath.Join(dir, "..data"))
				os.Symlink("..data/token", filepath.Join(dir, "token"))
			} else {
				os.WriteFile(filepath.Join(dir, "token"), []byte("token-one\n"), 0o600)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &testlog.Buffer{}
			f, err := WatchFile(ctx, filepath.Join(dir, "token"), WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err != nil {
				t.Fatal(err)
			}
			if tok, _ := f.Token(); tok != "token-one" {
				t.Fatalf("token %q", tok)
			}
			// Touching the directory without changing the token: no signal.
			os.WriteFile(filepath.Join(dir, "unrelated"), []byte("x"), 0o600)
			waitChanged(t, f, false)
			tc.update(t, dir)
			waitChanged(t, f, true)
			if tok, _ := f.Token(); tok != "token-two" {
				t.Fatalf("token after update %q", tok)
			}
			if strings.Contains(logs.String(), "token-one") || strings.Contains(logs.String(), "token-two") {
				t.Fatal("token logged")
			}
		})
	}
}

func TestWatchFileErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := WatchFile(ctx, "/nonexistent-dir/token"); err == nil {
		t.Fatal("missing directory accepted")
	}
	dir := t.TempDir()
	f, err := WatchFile(ctx, filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Token(); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "token"), []byte("  \n"), 0o600)
	if _, err := f.Token(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "token"), bytes.Repeat([]byte("a"), MaxSize+1), 0o600)
	if _, err := f.Token(); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("huge file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "token"), []byte("pgj1.c.now-a-real-token"), 0o600)
	waitChanged(t, f, true) // a readable token appeared
}
