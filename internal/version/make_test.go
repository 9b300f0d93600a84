package version_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testbuild"
)

// `make build` stamps every binary with VERSION and REVISION (the stamp the
// packages and images get from the same LDFLAGS), and builds them static,
// the hub included, as the packages ship them.
func TestMakeBuildStampsEveryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the commands")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	const ver, rev = "9.8.7-stamp", "feedc0de"
	cmd := exec.Command("make", "build", "BIN="+bin, "VERSION="+ver, "REVISION="+rev)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, c := range [][]string{
		{"pullgate-hub", "--version"},
		{"pullgate-agent", "--version"},
		{"pullgate-credential-provider", "--version"},
		{"docker-credential-pullgate", "version"},
		{"docker-credential-pullgate", "--version"},
	} {
		out, err := exec.Command(filepath.Join(bin, c[0]), c[1:]...).CombinedOutput()
		want := c[0] + " " + ver + " (" + rev + ", "
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("%v: %v, output %q; want it to start with %q", c, err, out, want)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	for _, b := range []string{"pullgate-hub", "pullgate-agent", "pullgate-credential-provider"} {
		f, err := elf.Open(filepath.Join(bin, b))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter)", b)
			}
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(bin, "docker-credential-pullgate")); err != nil {
		t.Error(err)
	}
}
