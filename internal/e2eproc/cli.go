package e2eproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/internal/testlog"
)

// CLI runs a command-line tool (the hub's CLI) and keeps every byte it
// printed, for leak checks.
type CLI struct {
	T    testing.TB
	Bin  string
	Env  []string
	Dir  string
	Seen testlog.Buffer
}

// Run runs the tool with stdin and returns its stdout, and an error with
// its stderr when it fails.
func (c *CLI) Run(stdin string, args ...string) (string, error) {
	c.T.Helper()
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	c.Seen.Write(stdout.Bytes())
	c.Seen.Write(stderr.Bytes())
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(c.Bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Must is Run, failing the test on an error.
func (c *CLI) Must(stdin string, args ...string) string {
	c.T.Helper()
	out, err := c.Run(stdin, args...)
	if err != nil {
		c.T.Fatal(err)
	}
	return out
}
