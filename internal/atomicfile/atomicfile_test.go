package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for i, c := range []struct {
		content string
		mode    os.FileMode
	}{{"first\n", 0o600}, {"second, longer\n", 0o644}} {
		if err := Write(path, strings.NewReader(c.content), c.mode); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != c.content {
			t.Fatalf("write %d: read %q, %v", i, got, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != c.mode {
			t.Errorf("write %d: mode %v, want %v", i, fi.Mode().Perm(), c.mode)
		}
	}
	assertOnly(t, dir, "f.json")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteFailureLeavesOldContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(path, failingReader{}, 0o644, TempPattern("sweep-me-*"))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("content %q after a failed write", got)
	}
	assertOnly(t, dir, "f")
	if err := Write(filepath.Join(dir, "missing", "f"), strings.NewReader("x"), 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestTempPattern(t *testing.T) {
	dir := t.TempDir()
	// A reader that looks at the directory while the temporary file exists.
	var seen []string
	r := readerFunc(func(p []byte) (int, error) {
		if seen == nil {
			es, _ := os.ReadDir(dir)
			for _, e := range es {
				seen = append(seen, e.Name())
			}
			return copy(p, "x"), nil
		}
		return 0, io.EOF
	})
	if err := Write(filepath.Join(dir, "hosts.toml"), r, 0o644, TempPattern(".pullgate-*.tmp")); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], ".pullgate-") || !strings.HasSuffix(seen[0], ".tmp") {
		t.Errorf("temporary files %v", seen)
	}
	assertOnly(t, dir, "hosts.toml")
}

// TestTempDir: the temporary file lives in the given directory (a caller
// sweeps its leftovers there), and the result lands at path.
func TestTempDir(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	var inTmp int
	r := readerFunc(func(p []byte) (int, error) {
		if inTmp == 0 {
			es, _ := os.ReadDir(tmp)
			inTmp = len(es) + 1
			return copy(p, "x"), nil
		}
		return 0, io.EOF
	})
	if err := Write(filepath.Join(dir, "e.meta"), r, 0o600, TempDir(tmp)); err != nil {
		t.Fatal(err)
	}
	if inTmp != 2 {
		t.Errorf("temporary file not in the temp dir (%d entries seen there)", inTmp-1)
	}
	assertOnly(t, dir, "e.meta")
	if es, _ := os.ReadDir(tmp); len(es) != 0 {
		t.Errorf("left in the temp dir: %v", es)
	}
}

func assertOnly(t *testing.T, dir, name string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name() != name {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, name)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
