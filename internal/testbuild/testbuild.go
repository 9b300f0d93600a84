// Package testbuild builds the project's commands for tests that exec
// them. It passes -race when the test binary itself was built with -race,
// so `go test -race ./...` finds every package already compiled in the
// build cache and only links (a plain build would compile the whole
// dependency tree a second time, minutes on a fresh machine).
package testbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Flags are the go build flags matching the running test binary.
func Flags() []string {
	if raceEnabled {
		return []string{"-race"}
	}
	return nil
}

// Build compiles the package pkg (an import path or a path relative to
// the module root) into the file out.
func Build(pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := append([]string{"build"}, Flags()...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, b)
	}
	return nil
}

// ModuleRoot is the directory holding go.mod, above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
