// Package nfpm_test checks the packages' /etc/default files against the
// binaries and units they configure: every variable they mention is one
// the program reads (or the unit passes on), so a renamed flag or variable
// fails here. Building and installing the packages is tested in
// e2e/package_test.go.
package nfpm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testbuild"
)

var assignment = regexp.MustCompile(`(?m)^#?(PULLGATE_[A-Z_]+)=(.*)$`)

func help(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if err := testbuild.Build(pkg, bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", pkg, args, err, out)
	}
	return string(out)
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestAgentDefaults(t *testing.T) {
	usage := help(t, "./agent/cmd/pullgate-agent", "run", "--help")
	unit := read(t, "../../systemd/pullgate-agent.service")
	vars := assignment.FindAllStringSubmatch(read(t, "default/pullgate-agent"), -1)
	if len(vars) < 5 {
		t.Fatalf("only %d variables in default/pullgate-agent", len(vars))
	}
	for _, v := range vars {
		name := v[1]
		switch {
		case name == "PULLGATE_AGENT_ARGS":
			if !strings.Contains(unit, "ExecStart=/usr/bin/pullgate-agent run $PULLGATE_AGENT_ARGS") {
				t.Errorf("the unit does not pass %s", name)
			}
		case !strings.Contains(usage, "("+name+")"):
			t.Errorf("%s: pullgate-agent run --help does not know it", name)
		}
	}
}

func TestHubDefaults(t *testing.T) {
	usage := help(t, "./hub/cmd/pullgate-hub", "serve", "--help")
	unit := read(t, "../../systemd/pullgate-hub.service")
	for _, v := range assignment.FindAllStringSubmatch(read(t, "default/pullgate-hub"), -1) {
		name, value := v[1], strings.Trim(v[2], `"`)
		switch name {
		case "PULLGATE_HUB_ARGS":
			if !strings.Contains(unit, "$PULLGATE_HUB_ARGS") {
				t.Errorf("the unit does not pass %s", name)
			}
			for _, f := range strings.Fields(value) {
				if strings.HasPrefix(f, "--") && !strings.Contains(usage, " "+f+" ") {
					t.Errorf("%s: flag %s is not in pullgate-hub serve --help", name, f)
				}
			}
		default:
			if !strings.Contains(usage, name) {
				t.Errorf("%s: pullgate-hub serve --help does not mention it", name)
			}
		}
	}
}
